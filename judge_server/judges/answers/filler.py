"""The words that carry no answer, in many languages: what the content-free guard discounts.

Three sources, built once on first use:

- function words of 58 languages (``stopwordsiso``): "the", "is", "ce", "das", "это", "的";
- words that only frame or withhold an answer ("answer", "solution", "step", "above", "know"),
  in the languages a policy is likely to write, since no stopword list has them;
- less the words that answer a count by themselves ("none", "twice").

Number words ("eight", "huit", "восемь") stay filler as words, but count as the number they
name (``number_words``, from ``num2words``), so "eight" still answers a reference of "8".
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from functools import lru_cache


def _split(text: str) -> list[str]:
    return text.split()


# Words that frame, defer or withhold an answer. Single words, not phrases: a response made only
# of these and function words has no answer, whatever their order ("see the answer above",
# "the solution is as follows"). Lower-case; matched after casefolding.
FRAMING_WORDS = frozenset(
    _split(
        """
        answer answers answered answering solution solutions solve solved solving step steps
        stepwise reasoning reason think thinking thought thoughts process final result results
        conclusion therefore thus hence question questions problem problems explanation explain
        explained above below following follows shown show shows see seen look refer reference
        mentioned stated given provided earlier previous previously before later reply response
        output know knowing unknown unsure sure idea clue certain uncertain maybe perhaps possibly
        depends depending guess hmm hm um uh okay ok well let lets let's sorry apologize unable
        cannot can't don't dont doesn't isn't won't couldn't i'm im correct correctly right true
        truth exactly indeed obviously clearly simply trivially note notes notice please check
        calculate calculation calculations compute computing work working details detail analysis
        analyze carefully careful attempt try trying tried proceed proceeding begin start first
        finally consider considering approach method methods way ways case cases option options
        choice choices pick picking select selected choose chosen best good great nice interesting
        sweet easy hard difficult complicated complex tricky simple straightforward obvious etc
        n/a na tbd todo placeholder lorem ipsum dolor amet text here there this that steht staat
        trouve encuentra encontra trova находится possibility possibilities possible vary varies
        varying various several single multiple many numerous say tell certainty unclear ambiguous
        unknowable impossible determine depend context situation circumstances opinion perspective
        interpretation subjective réponse reponse solution étape étapes ci-dessus dessus dessous
        ci-dessous voir sais savoir respuesta solución solucion paso pasos arriba abajo anterior
        sé se saber antwort lösung losung loesung schritt schritte oben unten siehe weiß weiss
        wissen risposta soluzione passo passi sopra sotto vedi so sapere resposta solução solucao
        passo acima abaixo veja sei saber antwoord oplossing stap stappen hierboven hieronder zie
        weet odpowiedź odpowiedz rozwiązanie rozwiazanie krok powyżej powyzej poniżej ponizej wiem
        ответ ответа решение шаг шаги выше ниже см знаю знать смотрите відповідь рішення вище
        нижче знаю cevap cevabı yanıt çözüm adım yukarıda aşağıda bilmiyorum bilmiyoru jawaban
        jawabannya solusi langkah atas bawah tahu tidak đáp án lời giải bước ở trên dưới biết
        không उत्तर हल ऊपर नीचे पता नहीं मुझे मैं मेरा الإجابة الاجابة الجواب إجابة الحل أعلاه
        أدناه أعرف اعرف 답 정답 답변 풀이 위에 아래에 모르겠습니다 모르겠어요 몰라요
        """
    )
)
"""Framing and withholding words, hand-written: extend, never shrink without a probe."""

# Chinese, Japanese and Thai run words together, and Korean glues particles to words: these are
# matched as substrings of a run of those scripts.
RUN_WORDS = frozenset(
    _split(
        """
        답 정답 답변 풀이 위 아래 모르겠습니다 모르겠어요 몰라요 있습니다 입니다 습니다 은 는 이
        가 을 를 에 에서 의 도 로 으로 참조 보세요 단계 결과 최종 答案 答 解答 解 回答 步骤 步驟
        上面 上文 下面 下文 如上 如下 见 見 参见 请看 看 我 不知道 不清楚 知道 不确定 不確定 最终
        最終 结果 結果 是 为 為 的 了 在 如 所 示 答え 解答 回答 上記 下記 以上 以下 ステップ
        わかりません 分かりません 知りません です ます は に あり あります を 見て ください 参照
        の が คำตอบ ข้างบน ข้างล่าง ไม่รู้ ไม่ทราบ
        """
    )
)

# Words that function-word lists hold but that answer a count or a choice by themselves.
ANSWER_WORDS = frozenset(
    _split(
        """
        none nothing nobody noone never once twice half dozen both neither
        """
    )
)

# The counts those words name, so "none" names a reference of 0 and "twice" one of 2.
ANSWER_VALUES: dict[str, Fraction] = {
    "none": Fraction(0),
    "nothing": Fraction(0),
    "nobody": Fraction(0),
    "noone": Fraction(0),
    "never": Fraction(0),
    "neither": Fraction(0),
    "once": Fraction(1),
    "twice": Fraction(2),
    "both": Fraction(2),
    "half": Fraction(1, 2),
    "dozen": Fraction(12),
}

YES_POLAR = frozenset(
    _split(
        """
        yes true correct right ja wahr richtig oui vrai sí si verdadero cierto vero sim
        verdadeiro да верно правда 是 对 對 正确 はい 正しい 네 evet ya benar có đúng
        """
    )
)
NO_POLAR = frozenset(
    _split(
        """
        no false incorrect wrong nein falsch non faux falso não nao нет неверно ложь 否 错 錯
        错误 いいえ 아니요 hayır tidak salah không sai
        """
    )
)
POLAR_WORDS = YES_POLAR | NO_POLAR
"""A reference made of these answers a yes/no question; synonyms of it share no tokens."""

# Words that say yes or no without being "yes" or "no": against a yes/no reference, an answer.
YES_WORDS = YES_POLAR | frozenset(
    _split(
        """
        indeed certainly absolutely definitely affirmative yeah yep yup naturally surely
        exactement absolument certainement claro exacto genau natürlich конечно точно 当然
        もちろん 물론
        """
    )
)
NO_WORDS = NO_POLAR | frozenset(_split("negative nope nah нисколько 没有 不是 不对 아니"))


# Letters and digits, with the combining vowel signs of Arabic, Indic scripts and Thai, which
# Python's \w leaves out.
_LETTER = (
    r"(?:[^\W_]|[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0900-\u0963\u0966-\u0dff\u0e00-\u0e7f])"
)
WORD = re.compile(rf"{_LETTER}+")


@lru_cache(maxsize=1)
def all_number_words() -> dict[str, tuple[int, str]]:
    """One-word cardinals of every language num2words writes (0-20, tens, 100, 1000) ->
    (value, language)."""
    from num2words import CONVERTER_CLASSES, num2words

    words: dict[str, tuple[int, str]] = {}
    for lang in sorted(CONVERTER_CLASSES, key=lambda code: code != "en"):  # English first
        for value in (*range(21), 30, 40, 50, 60, 70, 80, 90, 100, 1000):
            try:
                text = str(num2words(value, lang=lang))
            except Exception:  # a language without this range: skip it
                continue
            found = WORD.findall(text.casefold())
            if len(found) == 1:
                words.setdefault(found[0], (value, lang.split("_")[0]))
    return words


@lru_cache(maxsize=1)
def number_words() -> dict[str, int]:
    """The number words that surely name their number -> value: English ones, and those of other
    languages that are no function word of a third language and frame no answer (Danish "to"
    is English "to", Italian "sei" is Portuguese "I know")."""
    langs_of = _function_word_languages()
    return {
        word: value
        for word, (value, lang) in all_number_words().items()
        if lang == "en" or (word not in FRAMING_WORDS and langs_of.get(word, {lang}) <= {lang})
    }


@lru_cache(maxsize=1)
def _function_word_languages() -> dict[str, set[str]]:
    """Function word -> the languages whose stopword list holds it (``stopwordsiso``)."""
    import stopwordsiso

    langs_of: dict[str, set[str]] = {}
    for lang in stopwordsiso.langs():
        for word in stopwordsiso.stopwords(lang):
            langs_of.setdefault(unicodedata.normalize("NFKC", word).casefold(), set()).add(lang)
    return langs_of


@lru_cache(maxsize=1)
def filler_words() -> frozenset[str]:
    """Every word that carries no answer: function words and framing words, less answer words."""
    words = (set(_function_word_languages()) | FRAMING_WORDS | RUN_WORDS) - ANSWER_WORDS
    # Some lists hold digits; a number is always a candidate answer.
    return frozenset(w for w in words if not any(c.isdigit() for c in w))
