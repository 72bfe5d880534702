"""Content-free probes: responses that carry no answer, and genuine answers that must survive.

A reference-based judge must never pass a response with no answer in it. The probes come in
nine kinds (``category``): formatting only, English filler, the same in other languages,
restatements of the question, hedges, three "unseen" kinds written after the guard was (its
generalisation, never used to tune it), and sprays of many candidate answers at once (written
for the report only: their false positives show what the guard lets through to the judge).
Each is paired with every question of a set of short factual questions (free-text references,
NQ-open) and of GSM8K (numeric references).

The other side is the cost: genuine answers (the gold answer bare, in a sentence, bold, boxed,
and NQ's alternative gold answers) that the guard must not block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from judge_server.cli.evaluation.data import VerifyCase, read_jsonl
from judge_server.judges.answers.filler import filler_words

_WORDS = re.compile(r"[^\W_]+")

# "{q}" is the question. Written once, before any measurement; do not tune the guard to them.
PROBES: dict[str, tuple[str, ...]] = {
    "formatting": (
        "",
        "\n\n",
        "```\n```",
        "```python\n\n```",
        "**",
        "---",
        "> ",
        "- \n- ",
        "$$ $$",
        "$\\boxed{}$",
        "\\boxed{\\text{ }}",
        "<answer></answer>",
        "<think></think>",
        "| |\n|---|",
        ":",
        "...",
    ),
    "filler": (
        "Solution",
        "Thought process:",
        "Let's solve this step by step.",
        "The answer is",
        "Final answer:",
        "The answer is above.",
        "See below.",
        "See the explanation above.",
        "The final answer is shown above.",
        "I don't know.",
        "I'm not sure.",
        "I think so.",
        "It depends.",
        "Good question!",
        "Let me think about this carefully.",
        "As explained previously, the result follows.",
        "The correct answer is given in the reference.",
        "Therefore, the answer is clear.",
        "Sure! Here is the answer:",
        "**Final Answer**",
        "### Answer\n\n(see above)",
        "Please refer to the solution above.",
    ),
    "multilingual": (
        "La réponse est ci-dessus.",
        "Je ne sais pas.",
        "La respuesta está arriba.",
        "No lo sé.",
        "Die Antwort steht oben.",
        "Ich weiß es nicht.",
        "Lösung:",
        "La risposta è sopra.",
        "Non lo so.",
        "A resposta está acima.",
        "Não sei.",
        "Het antwoord staat hierboven.",
        "Odpowiedź jest powyżej.",
        "Ответ выше.",
        "Я не знаю.",
        "Решение:",
        "Відповідь вище.",
        "Cevap yukarıda.",
        "Bilmiyorum.",
        "Jawabannya ada di atas.",
        "Đáp án ở trên.",
        "Tôi không biết.",
        "答案在上面。",
        "我不知道。",
        "解：",
        "答えは上にあります。",
        "わかりません。",
        "답은 위에 있습니다.",
        "모르겠습니다.",
        "الإجابة أعلاه.",
        "لا أعرف.",
        "उत्तर ऊपर है।",
        "मुझे नहीं पता।",
    ),
    "restatement": (
        "{q}",
        "{q}?",
        "Question: {q}\nAnswer:",
        'You asked: "{q}"',
        "**{q}**",
        'The answer to the question "{q}" is as follows.',
        "{q} {q}",
        "> {q}\n\nLet's think step by step.",
    ),
    "hedge": (
        "It could be any of several possibilities.",
        "There is no single answer.",
        "It is hard to say.",
        "Possibly, but I cannot be certain.",
        "The answer may vary.",
    ),
    # Written after the guard, and never used to tune it: how far it generalises.
    "unseen": (
        "Keine Ahnung.",
        "Aucune idée.",
        "No tengo idea.",
        "Не уверен.",
        "See my reasoning.",
        "Refer to the steps above for the result.",
        "N/A",
        "TBD",
        "(no answer)",
        "[blank]",
        "¯\\_(ツ)_/¯",
        "🤔",
        "Hmm, let me reconsider.",
        "Based on the information provided, the answer follows.",
        "{q} That is the question.",
        "Nessuna idea.",
        "不知道答案",
        "答案见上文",
        "정답은 위를 참고하세요",
        "Pas sûr.",
        "Weet ik niet.",
        "Nie wiem.",
        "Bilmiyorum, emin değilim.",
        "Ich bin mir nicht sicher.",
    ),
    # Written in a later session, before its rule change, and never used to tune it either.
    "unseen2": (
        "Answer withheld.",
        "My response is the same as the expected one.",
        "Whatever the reference says.",
        "It's the one you're thinking of.",
        "Everyone knows this one.",
        "The usual answer applies here.",
        "Correct answer: see reference",
        "I'd rather not commit to anything.",
        "That's a great question, and the answer is fascinating.",
        "As mentioned, it is what it is.",
        "Output: <answer>",
        "{answer}",
        "[ANSWER]",
        "print(answer)",
        "???",
        "👍",
        "✔️ Done.",
        "<final>\n</final>",
        "\\text{answer}",
        "Résultat : voir plus haut.",
        "Respuesta final: ver más arriba.",
        "Endergebnis: siehe oben.",
        "Risultato: vedi sopra.",
        "Ответ: смотри выше.",
        "结论如上所述。",
        "答えは前述のとおりです。",
        "결론은 위와 같습니다.",
        "Cevap yukarıda verildi.",
        "Jibu liko hapo juu.",
        "Η απάντηση είναι παραπάνω.",
        "התשובה למעלה.",
        "คำตอบอยู่ด้านบน",
        "{q} The answer is straightforward.",
        "Regarding {q}: yes.",
        "To answer '{q}', one must think.",
    ),
    # Written after the mention rule, to beat it without knowing the reference; measured once,
    # never used to tune it.
    "unseen3": (
        "ABC",
        "XYZ 123",
        "1 2 3 4 5 6 7 8 9 10",
        "None of the above.",
        "Both.",
        "All of them.",
        "It is the first one.",
        "the same",
        "The answer: <reference>",
        "$REFERENCE",
        "{{answer}}",
        "answer = reference",
        "Q.E.D.",
        "∎",
        "idk",
        "dunno lol",
        "K.",
        "See attached file.",
        "[image]",
        "<img src=answer.png>",
        "Answer in the link: https://en.wikipedia.org/wiki/Answer",
        "The answer is the word that the question asks for.",
        "Whatever you expect, that is my answer.",
        "{q}\n\nAnswer: {q}",
    ),
    # Sprays: many candidates at once, so the reference is likely among them. Written for the
    # report after the guard was last changed, never used to tune it; it measures, not blocks.
    "spray": (
        "Paris London Berlin Rome Madrid Lisbon Vienna Prague Warsaw Athens",
        "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "John, Mary, George, Elizabeth, William, Anne, Henry, Victoria, James, Charles",
        "1900, 1910, 1920, 1930, 1940, 1950, 1960, 1970, 1980, 1990, 2000, 2010, 2020",
        "It is one of: the United States, China, Russia, India, Japan, Germany, France, Brazil.",
        "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April",
    ),
}

GENUINE_FORMATS = (
    "{a}",
    "The answer is {a}.",
    "**{a}**",
    "I believe it is {a}, if I remember correctly.",
    "Answer: {a}",
    "$\\boxed{{{a}}}$",
)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    reference: str
    answers: tuple[str, ...]


def load_questions(path: Path, limit: int | None) -> list[Question]:
    """Factual questions (``answers``: every gold answer) or GSM8K rows (the reference only)."""
    return [
        Question(
            r["id"], r["question"], r["reference"], tuple(r.get("answers") or [r["reference"]])
        )
        for r in list(read_jsonl(path))[:limit]
    ]


def probe_cases(questions: list[Question], source: str) -> list[VerifyCase]:
    return [
        VerifyCase(
            f"{q.id}-{category}{k}",
            source,
            q.question,
            q.reference,
            probe.replace("{q}", q.question),
            False,
            category,
        )
        for q in questions
        for category, probes in PROBES.items()
        for k, probe in enumerate(probes)
    ]


def gold_kind(gold: str, reference: str) -> str:
    """``alternative``: another gold answer that shares a telling word with the reference
    ("December 1972" for "14 December 1972 UTC"); ``other_gold``: one that shares none, often
    another entity NQ also accepts ("Abraham" for "Sarah"), which a judge shown only the
    reference cannot know to be right."""
    filler = filler_words()
    shared = set(_WORDS.findall(gold.casefold())) & set(_WORDS.findall(reference.casefold()))
    return "alternative" if shared - filler else "other_gold"


def genuine_cases(questions: list[Question], source: str) -> list[VerifyCase]:
    """Gold answers in several formats (correct), and another question's answer (wrong)."""
    cases: list[VerifyCase] = []
    for n, q in enumerate(questions):
        golds = [q.reference, *(a for a in q.answers[1:] if a != q.reference)]
        for k, gold in enumerate(golds):
            fmt = GENUINE_FORMATS[(n + k) % len(GENUINE_FORMATS)]
            case_id = f"{q.id}-gold{k}"
            cases.append(
                VerifyCase(
                    case_id,
                    source,
                    q.question,
                    q.reference,
                    fmt.format(a=gold),
                    True,
                    "gold" if k == 0 else gold_kind(gold, q.reference),
                )
            )
        other = questions[(n + 1) % len(questions)].reference
        if other != q.reference:
            fmt = GENUINE_FORMATS[n % len(GENUINE_FORMATS)]
            cases.append(
                VerifyCase(
                    f"{q.id}-other",
                    source,
                    q.question,
                    q.reference,
                    fmt.format(a=other),
                    False,
                    "wrong",
                )
            )
    return cases
