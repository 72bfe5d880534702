"""Correct answers that do not repeat the reference's words: what the mention rule may cost.

Each is a short factual question, its reference, and a correct answer in another form: initials,
accents, a surname alone, digits for words, a stem, and also nicknames, translations and
synonyms that share nothing with the reference, which the guard refuses by design.
"""

from __future__ import annotations

from judge_server.cli.evaluation.data import VerifyCase

# Correct answers in another form than the reference's words: (question, reference, answer).
# Written for the mention rule before it was measured on them, hard cases included (nicknames,
# translations, synonyms share no word with the reference and are refused by design).
PARAPHRASES: tuple[tuple[str, str, str], ...] = (
    ("who was president during the cuban missile crisis", "John F. Kennedy", "JFK"),
    ("who was president during the cuban missile crisis", "John F. Kennedy", "Kennedy"),
    ("who was president during the cuban missile crisis", "John F. Kennedy", "President Kennedy"),
    ("which country bought alaska", "the United States", "The USA bought it."),
    ("which country bought alaska", "the United States", "The U.S. bought it."),
    ("who was president during the cuban missile crisis", "John F. Kennedy", "J.F.K."),
    ("which country bought alaska", "the United States", "America"),
    (
        "what agency landed men on the moon",
        "NASA",
        "the National Aeronautics and Space Administration",
    ),
    ("which university is in westwood", "UCLA", "University of California, Los Angeles"),
    ("who won the 2010 world cup", "Spain", "España"),
    ("who won the 2010 world cup", "Spain", "the Spanish national team"),
    ("who won the men's singles at roland garros in 2009", "Roger Federer", "Federer"),
    ("who won the men's singles at roland garros in 2009", "Roger Federer", "roger federer"),
    ("who played the lead in amelie", "Audrey Tautou", "Audrey Tatou"),
    ("who scored the hand of god goal", "Diego Maradona", "Maradona, in 1986"),
    ("who is the king of rock and roll", "Elvis Presley", "Elvis"),
    ("who painted the mona lisa", "Leonardo da Vinci", "Da Vinci"),
    ("who painted the mona lisa", "Leonardo da Vinci", "Léonard de Vinci"),
    ("where is the eiffel tower", "Paris", "In Paris, France."),
    ("what is the capital of england", "London", "Londres"),
    ("when did world war ii end", "1945", "in nineteen forty-five"),
    ("when did world war ii end", "September 2, 1945", "2 September 1945"),
    ("when did world war ii end", "September 2, 1945", "Sept. 2nd, 1945"),
    ("how many players are on a soccer team", "eleven", "11"),
    ("how many players are on a soccer team", "11", "eleven players"),
    ("what is the largest planet", "Jupiter", "jupiter, the gas giant"),
    ("what type of animal is a whale", "a mammal", "mammals"),
    ("what process do plants use to make food", "photosynthesis", "photosynthetic conversion"),
    ("what does a seismograph measure", "earthquakes", "seismic waves from an earthquake"),
    ("what is the chemical symbol for gold", "Au", "AU"),
    ("what is h2o", "water", "H2O is water."),
    ("what is the nickname of new york city", "the Big Apple", "Big Apple"),
    ("what city is called the big apple", "New York City", "NYC"),
    ("what city is called the big apple", "New York City", "New York"),
    ("who wrote the origin of species", "Charles Darwin", "Darwin"),
    ("who developed the theory of general relativity", "Albert Einstein", "Einstein did."),
    ("what is the longest river in africa", "the Nile", "The Nile River"),
    ("what is the longest river in africa", "the Nile", "Nile"),
    ("what currency does japan use", "the yen", "Japanese yen (JPY)"),
    ("which organ pumps blood", "the heart", "The cardiac muscle, i.e. the heart"),
    ("who was the first man on the moon", "Neil Armstrong", "Armstrong"),
    ("what is the tallest mountain", "Mount Everest", "Mt. Everest"),
    ("what is the tallest mountain", "Mount Everest", "Everest"),
    ("what language is spoken in brazil", "Portuguese", "português"),
    ("what language is spoken in brazil", "Portuguese", "Brazilian Portuguese"),
    ("what is the freezing point of water in fahrenheit", "32 °F", "32 degrees"),
    ("who discovered penicillin", "Alexander Fleming", "Sir Alexander Fleming"),
    ("who discovered penicillin", "Alexander Fleming", "Fleming"),
    ("what is the plural of mouse", "mice", "Mice"),
    ("which gas do plants absorb", "carbon dioxide", "CO2"),
    ("which war was fought between the north and south", "the American Civil War", "The Civil War"),
    ("what is the smallest prime number", "two", "2"),
)


def paraphrase_cases(source: str) -> list[VerifyCase]:
    return [
        VerifyCase(f"paraphrase-{k}", source, question, reference, answer, True, "paraphrase")
        for k, (question, reference, answer) in enumerate(PARAPHRASES)
    ]
