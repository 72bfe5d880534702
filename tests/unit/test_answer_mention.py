"""The mention rule: a response must name a short text reference, in some form, to reach the
judge; every option of a multiple-choice question named alike chooses nothing."""

import pytest

from judge_server.judges import Judge, JudgeItem, judge_for
from judge_server.judges.answers.content_free import answer_free_reason
from judge_server.judges.answers.mention import fold, same_stem
from judge_server.judges.modes import parse_rubric
from tests.fakes import ScriptedEngine

CAPITAL = "What is the capital of France?"
MOON = "who was president during the cuban missile crisis"
MC = "Which city is the capital of France?\nA) Lyon\nB) Paris\nC) Texas A&M\nD) A request line"


@pytest.mark.parametrize(
    ("response", "reference", "question"),
    [
        ("Lyon", "Paris", CAPITAL),  # a wrong answer: reward 0 either way, the judge unasked
        ("Keine Ahnung.", "Paris", CAPITAL),
        ("Based on the information provided, the answer follows.", "Sarah", "who had a baby"),
        ("My response is the same as the expected one.", "Sarah", "who had a baby"),
        ("Everyone knows this one.", "the Elkia Federation", "where does the anime end"),
        # lower-case words are not initials: "ci" of "ci-dessus" is not "Chandragupta II"
        ("La réponse est ci-dessus.", "Chandragupta II", "who ruled the gupta empire"),
        ("It is hard to say.", "Chandragupta II", "who ruled the gupta empire"),  # "it is" != II
        ("I think so.", "), starting on", "when does the season start"),
        # a word the question gives away names nothing, in any form ("industry"/"industrial")
        (
            "what new deal program limited production in industry",
            "National Industrial Recovery Act",
            "what new deal program limited production in industry",
        ),
    ],
)
def test_a_response_that_never_names_a_short_reference_is_refused(
    response: str, reference: str, question: str
) -> None:
    assert answer_free_reason(response, reference, question) is not None


@pytest.mark.parametrize(
    ("response", "reference", "question"),
    [
        ("JFK", "John F. Kennedy", MOON),
        ("J.F.K.", "John F. Kennedy", MOON),
        ("The U.S. bought it.", "the United States", "which country bought alaska"),
        ("President Kennedy", "John F. Kennedy", MOON),
        ("The USA bought it.", "the United States", "which country bought alaska"),
        ("University of California, Los Angeles", "UCLA", "which university is in westwood"),
        ("the National Aeronautics and Space Administration", "NASA", "who landed on the moon"),
        ("Javier Fernandez", "Javier Fernández", "who won the world title"),
        ("Léonard de Vinci", "Leonardo da Vinci", "who painted the mona lisa"),
        ("transposition", "transposed", "what happens to the matrix"),
        ("Mt. Everest", "Mount Everest", "what is the tallest mountain"),
        ("mammals", "a mammal", "what type of animal is a whale"),
        ("It ended in 1945.", "September 2, 1945", "when did world war ii end"),
        ("eleven", "11", "how many players are on a soccer team"),
        ("The Who", "The Who", "Which band wrote Tommy?"),
        ("September", "till September", "How long does the season last?"),
    ],
)
def test_a_reference_named_in_another_form_reaches_the_judge(
    response: str, reference: str, question: str
) -> None:
    assert answer_free_reason(response, reference, question) is None


@pytest.mark.parametrize(
    ("response", "reference", "question"),
    [
        ("America", "the United States", "which country bought alaska"),
        ("Londres", "London", "what is the capital of england"),
        ("CO2", "carbon dioxide", "which gas do plants absorb"),
    ],
)
def test_paraphrases_sharing_nothing_with_the_reference_are_the_rules_cost(
    response: str, reference: str, question: str
) -> None:
    # Measured by `judge-server eval` (paraphrase category); pinned so a change is deliberate.
    assert answer_free_reason(response, reference, question) == "misses_reference"


def test_long_references_and_formulas_keep_the_structural_rule() -> None:
    long = "the treaty signed at the end of the war that set the borders of the new states"
    assert answer_free_reason("Versailles", long, "what ended it") is None
    assert answer_free_reason("See above.", long, "what ended it") == "filler_only"
    assert answer_free_reason("0.866", "\\frac{\\sqrt{3}}{2}", "What is sin 60°?") is None


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("See above.", "filler_only"),
        ("Indeed it is.", None),
        ("Nope", None),
        ("Non.", None),
        ("Absolutely not", None),
        ("Is Paris in France?", "restates_question"),
        ("Yes or no?", "lists_options"),  # both sides: a hedge
        ("true false", "lists_options"),
        ("Yes/no", "lists_options"),
        ("Paris is a city.", "misses_reference"),  # no yes or no word at all
    ],
)
def test_a_yes_no_reference_needs_a_yes_or_a_no(response: str, reason: str | None) -> None:
    assert answer_free_reason(response, "Yes", "Is Paris in France?") == reason


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("True.", None),  # a bare reply in the question's own word answers
        ("Correct, indeed.", None),
        ("Is it true that Paris is in France?", "restates_question"),
        ("True or false.", "lists_options"),
        ("No, it is false that Paris is in France.", None),
    ],
)
def test_a_polar_word_the_question_holds_answers_only_bare(
    response: str, reason: str | None
) -> None:
    question = "Is it true that Paris is in France?"
    assert answer_free_reason(response, "True", question) == reason


def test_function_words_that_are_numbers_elsewhere_are_no_number() -> None:
    # Azerbaijani "on" is 10, Turkish "bin" 1000: neither answers "how many".
    assert answer_free_reason("Ich bin mir nicht sicher.", "18", "How many?") == "no_number"
    assert answer_free_reason("Based on it.", "18", "How many?") == "no_number"


@pytest.mark.parametrize(
    "response",
    [
        "A) Lyon\nB) Paris\nC) Texas A&M\nD) A request line",
        "A, B, C or D",
        "Lyon, Paris, Texas A&M, or a request line.",
        "It is one of A/B/C/D.",
        "B or C",  # two options alike hedge as much as all four
        "Lyon or Paris",
    ],
)
@pytest.mark.parametrize("reference", ["B", "Paris"])
def test_listing_every_option_chooses_nothing(response: str, reference: str) -> None:
    assert answer_free_reason(response, reference, MC) == "lists_options"


@pytest.mark.parametrize("reference", ["B", "Paris"])
def test_ruling_one_option_out_by_name_is_the_hedge_rules_cost(reference: str) -> None:
    # C and B named once each: no choice stands out ("A&M" names no option A). Pinned so a
    # change is deliberate; the eval's right choices name one option and are never refused.
    response = "Texas A&M is a university, not a city: Paris."
    assert answer_free_reason(response, reference, MC) == "lists_options"


@pytest.mark.parametrize(
    "response",
    [
        "B",
        "(B) Paris",
        "**B**",
        "Paris",
        "A is Lyon, not the capital; B is Paris, the capital; C and D are no cities. So: B.",
    ],
)
@pytest.mark.parametrize("reference", ["B", "Paris"])
def test_a_choice_among_the_options_reaches_the_judge(response: str, reference: str) -> None:
    assert answer_free_reason(response, reference, MC) is None


def test_a_choice_that_misses_the_reference_option_is_refused() -> None:
    assert answer_free_reason("A", "B", MC) == "misses_reference"
    assert answer_free_reason("A) Lyon", "Paris", MC) == "misses_reference"


def test_forms() -> None:
    assert fold("fernández") == "fernandez"
    assert same_stem("transposed", "transposition")
    assert not same_stem("cart", "card")
    assert not same_stem("industry", "indian")


def _judge(spec: dict[str, object]) -> Judge:  # type: ignore[type-arg]
    return judge_for(parse_rubric(spec))


async def test_a_pointwise_rubric_with_a_reference_gives_a_refused_response_the_bottom() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"9": 1.0})  # the top of the default scale
    judge = _judge(
        {
            "name": "graded",
            "mode": "pointwise",
            "template": "{prompt}\nReference: {reference}\nAnswer: {response}\nScore it.",
        }
    )
    blocked = await judge.judge(JudgeItem("a", CAPITAL, "See above.", reference="Paris"), engine)
    assert blocked.reward == 0.0 and blocked.details["answer_guard"] == "filler_only"
    assert engine.prompts == []
    judged = await judge.judge(JudgeItem("b", CAPITAL, "Paris.", reference="Paris"), engine)
    assert judged.reward == 1.0 and len(engine.prompts) == 1


@pytest.mark.parametrize(
    ("a", "b", "reward"),
    [
        ("See above.", "Paris.", 0.0),  # a content-free response loses, whatever the judge says
        ("See above.", "Je ne sais pas.", 0.5),  # neither answers: a tie
        ("Lyon", "Paris", 0.0),  # misses the reference against one that names it
    ],
)
async def test_a_refused_response_never_wins_a_pairwise_comparison(
    a: str, b: str, reward: float
) -> None:
    # A judge that always prefers the first response shown: the guard decides, not it.
    engine = ScriptedEngine(lambda _p, _c: {"A": 1.0})
    judge = _judge(
        {
            "name": "pair",
            "mode": "pairwise",
            "template": "{prompt}\nReference: {reference}\nA: {response_a}\nB: {response_b}\n"
            "Which is right?",
        }
    )
    item = JudgeItem("a", CAPITAL, a, reference="Paris", metadata={"response_b": b})
    judgment = await judge.judge(item, engine)
    assert judgment.reward == reward and judgment.details["method"] == "answer_guard"
    assert engine.prompts == []


@pytest.mark.parametrize("a", ["Paris.", "It's Lyon, not Paris."])
async def test_only_the_other_response_refused_goes_to_the_judge(a: str) -> None:
    # A judge that always prefers the second response shown: it decides, not a free win.
    engine = ScriptedEngine(lambda _p, _c: {"B": 1.0})
    judge = _judge(
        {
            "name": "pair",
            "mode": "pairwise",
            "template": "{prompt}\nReference: {reference}\nA: {response_a}\nB: {response_b}\n"
            "Which is right?",
        }
    )
    item = JudgeItem("a", CAPITAL, a, reference="Paris", metadata={"response_b": "See above."})
    judgment = await judge.judge(item, engine)
    assert "method" not in judgment.details and len(engine.prompts) == 2
    assert judgment.reward == 0.5  # B first shown wins, then A: position only


async def test_pairwise_without_a_reference_in_its_prompt_is_not_guarded() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"A": 1.0})
    judge = _judge(
        {
            "name": "pair",
            "mode": "pairwise",
            "template": "{prompt}\nA: {response_a}\nB: {response_b}",
        }
    )
    item = JudgeItem(
        "a", CAPITAL, "See above.", reference="Paris", metadata={"response_b": "Paris"}
    )
    judgment = await judge.judge(item, engine)
    assert "method" not in judgment.details and engine.prompts


async def test_a_rubric_may_trade_the_mention_rule_for_paraphrases() -> None:
    template = "{prompt}\nReference: {reference}\nAnswer: {response}\nCorrect?"
    strict = _judge({"name": "c", "mode": "verdict", "template": template})
    lenient = _judge(
        {"name": "c", "mode": "verdict", "template": template, "answer_guard": "answer"}
    )
    assert strict.rubric.version != lenient.rubric.version
    paraphrase = JudgeItem("a", "which country bought alaska", "America", reference="the US")
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 1.0})
    assert (await strict.judge(paraphrase, engine)).details["answer_guard"] == "misses_reference"
    assert (await lenient.judge(paraphrase, engine)).reward == 1.0
    # content-free stays refused either way
    free = JudgeItem("b", "which country bought alaska", "See above.", reference="the US")
    assert (await lenient.judge(free, engine)).details["answer_guard"] == "filler_only"
    assert answer_free_reason("19", "18", "How many?", mention=False) is None
