#!/usr/bin/env python3
# Run: python3 -m venv /tmp/v && /tmp/v/bin/pip install rouge-score==0.1.2 sacrebleu==2.6.0 nltk==3.10.4 && /tmp/v/bin/python tools/vectors/metrics_vectors.py
"""Generates the reference test vectors for versus-core's ROUGE, BLEU and Porter stemmer.

The truth is the reference packages themselves: Google's `rouge-score` (whose stemmer is
NLTK's `PorterStemmer()` in its default NLTK_EXTENSIONS mode) and `sacrebleu` 2.x. This
script feeds them the committed inputs below and writes what they answer to
`crates/versus-core/tests/vectors/{rouge,bleu,porter}.json`, which
`crates/versus-core/tests/metrics_vectors.rs` compares the Rust port against.

To add a case, add one line to ROUGE_PAIRS, BLEU_SENTENCES or BLEU_CORPORA (or a word to
PORTER_EXTRA_WORDS) and run the script again.
"""

import json
import pathlib
import random
import re

import nltk
import rouge_score
import sacrebleu
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenizers
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "versus-core" / "tests" / "vectors"

# The summarization task of the seed suite (examples/seed.toml), verbatim.
GUTENBERG = (
    "Johannes Gutenberg (1398 – 1468) was a German goldsmith and publisher who introduced printing to "
    "Europe. His introduction of mechanical movable type printing to Europe started the Printing "
    "Revolution and is widely regarded as the most important event of the modern period. It played a "
    "key role in the scientific revolution and laid the basis for the modern knowledge-based economy "
    "and the spread of learning to the masses. Gutenberg many contributions to printing are: the "
    "invention of a process for mass-producing movable type, the use of oil-based ink for printing "
    "books, adjustable molds, and the use of a wooden printing press. His truly epochal invention was "
    "the combination of these elements into a practical system that allowed the mass production of "
    "printed books and was economically viable for printers and readers alike. In Renaissance Europe, "
    "the arrival of mechanical movable type printing introduced the era of mass communication which "
    "permanently altered the structure of society. The relatively unrestricted circulation of "
    "information—including revolutionary ideas—transcended borders, and captured the masses in the "
    "Reformation. The sharp increase in literacy broke the monopoly of the literate elite on education "
    "and learning and bolstered the emerging middle class."
)
GUTENBERG_REFERENCE = (
    "Johannes Gutenberg, a German goldsmith and publisher, brought mechanical movable type printing to "
    "Europe, starting the Printing Revolution. By combining mass-produced movable type, oil-based ink, "
    "adjustable molds and a wooden press into a practical, economical system, he made mass production "
    "of books possible. Printing spread information and ideas across borders, fed the Reformation and "
    "the scientific revolution, raised literacy, broke the educated elite's monopoly on learning and "
    "strengthened the middle class."
)
GUTENBERG_SUMMARY_SHORT = (
    "Gutenberg, a German goldsmith, introduced movable type printing to Europe, which started the "
    "Printing Revolution and spread learning to the masses."
)
GUTENBERG_SUMMARY_BULLETS = (
    "**Summary:**\n"
    "- Johannes Gutenberg (1398–1468) introduced mechanical movable type printing to Europe.\n"
    "- His invention combined movable type, oil-based inks, adjustable molds and a wooden press.\n"
    "- It enabled the mass production of printed books and was economically viable.\n"
    "\n"
    "- The printing press spread revolutionary ideas, increased literacy and strengthened the middle class.\n"
)
GUTENBERG_SUMMARY_SENTENCES = (
    "Johannes Gutenberg was a German goldsmith who brought printing to Europe.\n"
    "His movable type started the Printing Revolution, the most important event of the modern period.\n"
    "Mass-produced books spread knowledge, fed the Reformation and the scientific revolution.\n"
    "Literacy rose, breaking the elite's monopoly on learning."
)
GUTENBERG_REFERENCE_LINES = GUTENBERG_REFERENCE.replace(". ", ".\n")

PORTER_SENTENCE = (
    "generously dying lying tying news skies sky proceed exceed succeed ponies caresses relational "
    "conditional electrical hopefulness formality adjustable irritant replacement bowdlerize controll roll"
)
PORTER_SENTENCE_2 = (
    "generous die lie tie new sky skied proceeding exceeded succeeds pony caress relate condition "
    "electric hopeful formal adjust irritate replace bowdler control rolled"
)

# (reference, candidate): each pair is scored with use_stemmer=False and use_stemmer=True.
ROUGE_PAIRS = [
    # The seed suite's summarization task.
    (GUTENBERG_REFERENCE, GUTENBERG_SUMMARY_SHORT),
    (GUTENBERG_REFERENCE, GUTENBERG_SUMMARY_BULLETS),
    (GUTENBERG_REFERENCE, GUTENBERG_SUMMARY_SENTENCES),
    (GUTENBERG_REFERENCE_LINES, GUTENBERG_SUMMARY_SENTENCES),
    (GUTENBERG_REFERENCE_LINES, GUTENBERG_SUMMARY_BULLETS),
    (GUTENBERG, GUTENBERG_REFERENCE),
    (GUTENBERG, GUTENBERG_SUMMARY_BULLETS),
    (GUTENBERG_REFERENCE, GUTENBERG_REFERENCE),
    # From rouge-score's own tests.
    ("testing one two", "testing"),
    ("first text", "text first"),
    ("first something", "text first"),
    ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
    ("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5"),
    ("a b c d e", "a b f g h\na c h i e"),
    # Porter stemmer: every step and NLTK special case.
    (PORTER_SENTENCE, PORTER_SENTENCE_2),
    ("the caresses of ponies and cats", "a caress from a pony and a cat"),
    ("plastered motoring hopping tanned falling hissing fizzed failing filing", "plaster motor hop tan fall hiss fizz fail file"),
    ("happy enjoy spy fly try spied tried flies dies died", "happiness enjoyment spies flying trying spying"),
    ("relational conditional rational valenci hesitanci digitizer conformabli radicalli", "relate condition rationale valence hesitance digitize conformable radical"),
    ("differentli vileli analogousli vietnamization predication operator feudalism", "different vile analogous vietnamize predicate operate feudal"),
    ("decisiveness hopefulness callousness formaliti sensitiviti sensibiliti", "decisive hopeful callous formal sensitive sensible"),
    ("triplicate formative formalize electriciti electrical hopeful goodness", "triplic form formal electric electric hope good"),
    ("revival allowance inference airliner gyroscopic adjustable defensible irritant", "reviv allow infer airlin gyroscop adjust defens irrit"),
    ("replacement adjustment dependent adoption homologou communism activate angulariti homologous effective bowdlerize", "replac adjust depend adopt homolog commun activ angular homolog effect bowdler"),
    ("probate rate cease controll roll agreed feed bled sing", "probat rate ceas control roll agree feed bleed singing"),
    ("innings outings cannings inning outing canning howe news", "inning outing canning innings outings cannings howe new"),
    ("geology theology archaeology philology analogy", "geologi theologi archaeologi philologi analogi"),
    ("hopefully carefully beautifully generally finally", "hope care beauty general final"),
    ("syzygy toy yyyy yay boy trees oats troubles private oaten orrery", "syzygi toys yyy yays boys tree oat trouble privat oat orreri"),
    # Numbers, punctuation, tokens glued together.
    ("The price rose 3.5% to $1,200 in 2023.", "Prices rose by 3.5 percent to 1200 dollars in 2023!"),
    ("e-mail me at john.doe@example.com or call +1 (555) 010-9999", "email john doe at example dot com, call 555-010-9999"),
    ("It's the cat's pyjamas -- isn't it?", "its the cats pajamas isnt it"),
    ("COVID-19 cases fell 12% week-over-week; 3x fewer than 2021", "covid 19 cases fell twelve percent week over week"),
    ("abc123 123abc a1b2c3 9 99 999 9999 running2 2running", "abc 123 a1b2c3 9999 running 2 runnings"),
    ("well-known state-of-the-art AI/ML (NLP) systems...", "well known state of the art ai ml nlp systems"),
    # Unicode: accents vanish (they are not [a-z0-9]), a few code points lowercase into ASCII.
    ("Café naïve résumé façade coöperate", "cafe naive resume facade cooperate"),
    ("İstanbul is big; the Kelvin sign K is 'k'", "istanbul is big the kelvin sign k is k"),
    ("東京は日本の首都です。", "Tokyo is the capital of Japan."),
    ("Ünïcödé wörds ånd emoji 🙂 everywhere 🚀🚀", "unicode words and emoji everywhere"),
    ("ﬁne ﬂour straße ÀÉÎÕÜ", "fine flour strasse aeiou"),
    # Empty and degenerate inputs.
    ("", ""),
    ("", "something here"),
    ("something here", ""),
    ("   \n\t  ", "words"),
    ("?!... ---", "?!... ---"),
    ("a", "a"),
    ("a b", "b a"),
    ("one", "two"),
    # Repeated words.
    ("the the the the", "the the"),
    ("the cat the cat the cat", "the cat"),
    ("a b a b a b", "b a b a"),
    ("police killed the gunman", "the gunman police killed"),
    ("police kill the gunman", "the gunman kill police"),
    # Multi-line summaries for ROUGE-Lsum.
    ("line one here\nline two here\nline three here", "line three here\nline two here\nline one here"),
    ("a b c\nd e f", "a b c d e f"),
    ("a b c d e f", "a b c\nd e f"),
    ("a a a\na a a", "a a\na a\na a"),
    ("x y z\n\n\nz y x\n", "\nz y x\nx y z\n\n"),
    ("first sentence.\r\nsecond sentence.\r\n", "first sentence.\nsecond sentence."),
    ("the cat sat on the mat\nthe dog sat on the log", "the cat sat\non the log the dog\nsat on the mat"),
    ("one two three four\nfive six seven eight\nnine ten", "two four six\neight ten one\nthree five seven nine"),
    ("- point one\n- point two\n- point three", "* point two\n* point three\n* point four"),
    ("...\n!!!\n???", "words only\n..."),
    ("Hello World\nHELLO world", "hello world"),
]


def random_rouge_pairs(count):
    """Seeded pairs with a small vocabulary, so that repeated tokens stress LCS backtracking
    and the union-LCS double-count guard of ROUGE-Lsum."""
    rng = random.Random(20240601)
    vocab = ["a", "b", "c", "d", "the", "cats", "cat", "running", "runs", "ran", "x1", "q"]

    def text():
        lines = []
        for _ in range(rng.randint(1, 4)):
            lines.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9))))
        return "\n".join(lines)

    return [(text(), text()) for _ in range(count)]


ROUGE_PAIRS += random_rouge_pairs(24)


def rouge_vectors():
    cases = []
    for use_stemmer in (False, True):
        scorer = rouge_scorer.RougeScorer(
            ["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=use_stemmer
        )
        tokenizer = tokenizers.DefaultTokenizer(use_stemmer)
        for reference, candidate in ROUGE_PAIRS:
            # rouge-score's API is score(target, prediction).
            scores = scorer.score(reference, candidate)
            case = {
                "reference": reference,
                "candidate": candidate,
                "use_stemmer": use_stemmer,
                "reference_tokens": tokenizer.tokenize(reference),
                "candidate_tokens": tokenizer.tokenize(candidate),
            }
            for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
                s = scores[key]
                case[key] = [float(s.precision), float(s.recall), float(s.fmeasure)]
            cases.append(case)
    return {"rouge_score": rouge_score_version(), "nltk": nltk.__version__, "cases": cases}


def rouge_score_version():
    from importlib.metadata import version

    return version("rouge-score")


# Suffix-heavy words, irregular forms and the paper's examples, on top of the words of NLTK's
# own doctests (below).
PORTER_EXTRA_WORDS = """
generously dying lying tying news skies sky proceed exceed succeed ponies caresses relational
conditional electrical hopefulness formality adjustable irritant replacement bowdlerize controll
roll caress cats feed agreed plastered bled motoring sing conflated troubled sized hopping tanned
falling hissing fizzed failing filing happy enjoy spy fly try spied tried died dies ties lies flies
rational valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli
vietnamization predication operator feudalism decisiveness callousness formaliti sensitiviti
sensibiliti triplicate formative formalize electriciti hopeful goodness revival allowance inference
airliner gyroscopic defensible adjustment dependent adoption homologou communism activate
angulariti homologous effective probate rate cease innings inning outings outing cannings canning
howe geology theology archaeology philology analogy logi fulli hopefulli carefulli generally
finally beautifully syzygy toy yyyy yyy yy y yay boy trees oats troubles private oaten orrery tree
by ivy trouble at bl iz ed ing eed ies sses ss s is us as was has this thus bus gas yes abyss
a an ab abc abcd ie ied ying ly lies lied aies eies ouies ties tied vied pied hied
skis skiing skied news newsy newses proceeds proceeding succeeded exceeding dyed dye dyes eyeing
agreement disagreement agreeable feeds needed seeded breed breeding
hopping hoping hoped hopped filling filled fills fizzing buzzing buzzed missing kissed
ozone zone zoned tooth teeth goose geese mice criteria phenomena
electricity electrically electricians sensibility responsibility possibility
organization organizational organizationally reorganization organizer organize
nationalization nationalism nationalist nationality nationally national nation
conditionally conditioning conditioned conditioner
argument arguments argue argued arguing
relativity relatively relative relation relations relational relationship
activation activate activity actively active action actions react reaction
happiness happily happier happiest unhappy
abundance abundant dominance dominant attendance attendant independent independence
adaptable adaptability adaptation adaptive adapt adapting
university universal universally universe
communication communicate communicative communities community
generalization generalize generalized generalizing general generally generality
"""

PORTER_CASE_WORDS = [
    # NLTK's stem() lowercases its input (rouge-score has already lowercased every token).
    "Running", "SKIES", "Generously", "DYING", "News",
    # Non-ASCII letters go through unchanged except for lowercasing.
    "café", "naïve", "résumés", "ﬁnalizing", "straße",
    # Digits are consonants to the stemmer.
    "abc123ing", "123s", "2020s", "x1ies", "9ing", "covid19s", "mp3s", "h2oing",
]


def random_porter_words(count):
    """Seeded pseudo-words: syllables with many y's and vowels, ending in the suffixes the
    steps look for, so that every condition meets unusual stems."""
    rng = random.Random(1980)
    syllables = ["y", "yy", "ay", "oy", "ey", "a", "e", "i", "o", "u", "b", "c", "d", "l", "ll",
                 "s", "ss", "t", "tt", "w", "x", "z", "zz", "r", "n", "m", "g", "bl", "at", "iz",
                 "ee", "ie", "ou", "io", "str", "ph", "qu"]
    suffixes = ["", "s", "es", "ies", "ied", "eed", "ed", "ing", "y", "li", "alli", "logi", "ation",
                "al", "ement", "ion", "e", "ll", "ness", "ful", "icate", "ous", "ive", "ize", "er"]
    words = set()
    while len(words) < count:
        stem = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
        words.add(stem + rng.choice(suffixes))
    return words


def porter_words():
    words = set(PORTER_EXTRA_WORDS.split()) | random_porter_words(1500)
    test_dir = pathlib.Path(nltk.__file__).parent / "test"
    for path in sorted(test_dir.glob("*.doctest")):
        words.update(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    # Every generated form of a few stems with the suffixes the steps look for.
    stems = ["connect", "generat", "hope", "run", "fall", "fil", "adjust", "relat", "form", "sensi",
             "digit", "feud", "call", "valen", "geo", "theo", "activ", "nat", "spi", "tr", "d", "l"]
    suffixes = ["", "s", "es", "ies", "sses", "ed", "ied", "eed", "ing", "y", "ly", "li", "alli",
                "ational", "tional", "enci", "anci", "izer", "bli", "abli", "entli", "eli", "ousli",
                "ization", "ation", "ator", "alism", "iveness", "fulness", "ousness", "aliti",
                "iviti", "biliti", "fulli", "logi", "icate", "ative", "alize", "iciti", "ical",
                "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement",
                "ment", "ent", "ion", "sion", "tion", "ou", "ism", "ate", "iti", "ous", "ive",
                "ize", "e", "ll", "lled"]
    for stem in stems:
        for suffix in suffixes:
            words.add(stem + suffix)
    return sorted(words) + PORTER_CASE_WORDS


def porter_vectors():
    # Exactly the stemmer rouge-score builds (tokenizers.DefaultTokenizer(use_stemmer=True)).
    stemmer = tokenizers.DefaultTokenizer(use_stemmer=True)._stemmer
    assert isinstance(stemmer, porter.PorterStemmer)
    assert stemmer.mode == porter.PorterStemmer.NLTK_EXTENSIONS
    return {
        "nltk": nltk.__version__,
        "mode": stemmer.mode,
        "stems": {word: stemmer.stem(word) for word in porter_words()},
    }


GUTENBERG_MT = (
    "Johannes Gutenberg, a German goldsmith and publisher, introduced printing with movable type "
    "to Europe and started the printing revolution."
)

# (hypothesis, [references]) for sacrebleu.sentence_bleu.
BLEU_SENTENCES = [
    ("The cat sat on the mat.", ["The cat sat on the mat."]),
    ("The cat sat on the mat.", ["The cat is sitting on the mat."]),
    ("The cat is on the mat.", ["There is a cat on the mat.", "A cat is on the mat."]),
    ("It is a guide to action which ensures that the military always obeys the commands of the party.",
     ["It is a guide to action that ensures that the military will forever heed Party commands.",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party.",
      "It is the practical guide for the army always to heed the directions of the party."]),
    ("It is to insure the troops forever hearing the activity guidebook that party direct.",
     ["It is a guide to action that ensures that the military will forever heed Party commands.",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party."]),
    (GUTENBERG_MT, [GUTENBERG_REFERENCE]),
    (GUTENBERG_SUMMARY_SHORT, [GUTENBERG_REFERENCE, GUTENBERG_MT]),
    (GUTENBERG_SUMMARY_BULLETS, [GUTENBERG_REFERENCE]),
    # Punctuation-heavy text.
    ("Hello, world!!! (Really?) -- yes; no: maybe...", ["Hello, world! Really? Yes; no: maybe."]),
    ("\"Quoted\" text, 'single' quotes & ampersands <tags> {braces} [brackets] `ticks` ~tilde~ ^caret^ |pipe| \\back\\",
     ["\"Quoted\" text, 'single' quotes & ampersands <tags> {braces} [brackets]"]),
    ("a.b.c,d,e ,f. g .h", ["a . b . c , d , e , f . g . h"]),
    ("Mr. Smith paid $3.50, i.e. 3.5 dollars, for 1,000,000 shares.", ["Mr. Smith paid $3.50 for 1,000,000 shares."]),
    ("Version 1.2.3 (build 4,567) was released on 2023-10-05.", ["Version 1.2.3, build 4567, was released on 2023-10-05."]),
    ("Pi is 3.14159, e is 2.71828; 10. 20, 30 .40 ,50", ["Pi is 3.14159 and e is 2.71828 10 20 30 40 50"]),
    ("The 1990-2000 decade: 2-3 times more e-mail, state-of-the-art tools, x-ray -5 - 7 a-", ["In 1990-2000 there was 2-3 times more e-mail and state-of-the-art x-ray tools."]),
    ("It's the cat's pyjamas, isn't it? Don't you think so...", ["It is the cat's pyjamas, is it not? Do you not think so?"]),
    # 13a's HTML entities (replaced in order, so "&amp;lt;" becomes "<"), <skipped> and -\n.
    ("AT&amp;T said &quot;hello&quot; &lt;b&gt;bold&lt;/b&gt; &amp;lt;", ["AT&T said \"hello\" <b>bold</b> <"]),
    ("Tom & Jerry &amp Co", ["Tom & Jerry & Co"]),
    ("some <skipped> words <skipped>here", ["some words here"]),
    ("a hyphen-\nated word-\n-\nsplit across\nlines", ["a hyphenated word split across lines"]),
    ("first line\nsecond line\n\nthird line\n", ["first line second line third line"]),
    ("trailing whitespace   \t\n", ["trailing whitespace"]),
    ("ends with a hyphen-", ["ends with a hyphen"]),
    # Python's whitespace, which differs from Unicode White_Space (\x1c-\x1f are Python spaces).
    ("unit\x1fseparator\x1cfile\u3000ideographic\xa0nbsp\u2009thin", ["unit separator file ideographic nbsp thin"]),
    # Multiple references of different lengths (closest length, shorter on ties).
    ("one two three four five", ["one two three four", "one two three four five six"]),
    ("one two three four five", ["one two three four five six", "one two three four"]),
    ("one two three", ["one two three four five six seven", "one two"]),
    ("a b c d e f g h i j", ["a b c", "a b c d e f g h i j k l m n o p", "x y"]),
    ("The the the the the the the.", ["The cat is on the mat.", "There is a cat on the mat."]),
    # Empty and tiny hypotheses, where effective order matters.
    ("", ["The cat sat on the mat."]),
    ("", [""]),
    ("The cat sat on the mat.", [""]),
    ("cat", ["The cat sat on the mat."]),
    ("the cat", ["The cat sat on the mat."]),
    ("the cat sat", ["The cat sat on the mat."]),
    ("the mat cat", ["The cat sat on the mat."]),
    ("cat the", ["the cat"]),
    ("dog", ["The cat sat on the mat."]),
    ("sat the on cat mat", ["The cat sat on the mat."]),
    ("The cat sat on the hat today, really", ["The cat sat on the mat."]),
    # Case matters (lowercase=False) and unicode passes through 13a untouched.
    ("THE CAT SAT ON THE MAT", ["the cat sat on the mat"]),
    ("Die Größe über 10.000 Menschen, ca. 5,5 Mio. Euro", ["Die Größe: über 10.000 Menschen und 5,5 Mio. Euro"]),
    ("東京は日本の首都です。", ["東京は日本の首都です。"]),
    ("Emoji 🙂 tokens 🚀🚀 stay glued🙂", ["Emoji 🙂 tokens 🚀 🚀 stay glued 🙂"]),
    ("naïve café résumé — façade – coöperate…", ["naive cafe resume - facade - cooperate..."]),
]

# (hypotheses, [reference streams]) for sacrebleu.corpus_bleu; each stream has one reference per
# hypothesis.
BLEU_CORPORA = [
    (["The cat sat on the mat.", "A dog barked at the mailman."],
     [["The cat sat on the mat.", "The dog barked at the mailman."]]),
    (["The cat sat on the mat.", "A dog barked at the mailman.", "Birds fly."],
     [["The cat is sitting on the mat.", "The dog barked loudly.", "Birds can fly."],
      ["A cat sat on a mat.", "A dog was barking at the postman.", "The birds are flying south."]]),
    # Short segments: without effective order a missing 4-gram order zeroes the corpus score.
    (["cat", "dog", "the bird"], [["the cat", "the dog", "the bird flies"]]),
    (["", "hello world", ""], [["nothing", "hello world", ""]]),
    ([GUTENBERG_MT, GUTENBERG_SUMMARY_SHORT, GUTENBERG_SUMMARY_SENTENCES],
     [[GUTENBERG_REFERENCE, GUTENBERG_REFERENCE, GUTENBERG_REFERENCE_LINES]]),
    (["It is a guide to action which ensures that the military always obeys the commands of the party.",
      "It is to insure the troops forever hearing the activity guidebook that party direct."],
     [["It is a guide to action that ensures that the military will forever heed Party commands.",
       "It is a guide to action that ensures that the military will forever heed Party commands."],
      ["It is the guiding principle which guarantees the military forces always being under the command of the Party.",
       "It is the practical guide for the army always to heed the directions of the party."]]),
    (["1,000.50 dollars-worth", "e-mail: a@b.c", "(x + y) * z = 3.14"],
     [["1,000.50 dollars - worth", "e-mail : a@b.c", "( x + y ) * z = 3.14"]]),
]


def random_13a_texts(count):
    """Seeded strings of punctuation, digits, letters, whitespace and the pieces 13a treats
    specially, so that the four substitutions meet each other in every order."""
    rng = random.Random(13)
    pieces = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + list("0123456789") + list("aZ")
    pieces += [" ", "  ", "\n", "\t", "\r", "\x1f", "\xa0", "\u3000", "-\n", "<skipped>", "&amp;",
               "&lt;", "&gt;", "&quot;", "&amp;lt;", "é", "—", "…", "🙂", "1,000", "3.14", "a.b"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def random_bleu_sentences(count):
    """Seeded hypothesis/reference sets over a small vocabulary with punctuation and numbers,
    so that n-grams repeat, clip and match across several references."""
    rng = random.Random(4)
    vocab = ["the", "cat", "sat", "on", "mat", "a", "dog", ",", ".", "1,000", "3.5", "e-mail",
             "(", ")", "it's", "The", "2-3", "!"]

    def sentence(low, high):
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(low, high)))

    return [(sentence(0, 12), [sentence(1, 12) for _ in range(rng.randint(1, 3))])
            for _ in range(count)]


BLEU_SENTENCES += random_bleu_sentences(20)


def bleu_record(score):
    return {
        "score": float(score.score),
        "counts": [int(c) for c in score.counts],
        "totals": [int(t) for t in score.totals],
        "precisions": [float(p) for p in score.precisions],
        "bp": float(score.bp),
        "sys_len": int(score.sys_len),
        "ref_len": int(score.ref_len),
    }


def bleu_vectors():
    sentence_cases = []
    for hypothesis, references in BLEU_SENTENCES:
        case = {"hypothesis": hypothesis, "references": references}
        case.update(bleu_record(sacrebleu.sentence_bleu(hypothesis, references)))
        sentence_cases.append(case)

    corpus_cases = []
    for hypotheses, reference_streams in BLEU_CORPORA:
        case = {"hypotheses": hypotheses, "references": reference_streams}
        case.update(bleu_record(sacrebleu.corpus_bleu(hypotheses, reference_streams)))
        corpus_cases.append(case)
    # The corpus of every sentence case with one reference, as one document.
    single = [(h, r[0]) for h, r in BLEU_SENTENCES if len(r) == 1]
    hypotheses = [h for h, _ in single]
    streams = [[r for _, r in single]]
    case = {"hypotheses": hypotheses, "references": streams}
    case.update(bleu_record(sacrebleu.corpus_bleu(hypotheses, streams)))
    corpus_cases.append(case)

    # What the 13a tokenizer makes of every text above (sacrebleu calls it after rstrip()).
    tokenizer = Tokenizer13a()
    texts = []
    for hypothesis, references in BLEU_SENTENCES:
        texts.append(hypothesis)
        texts.extend(references)
    texts += [GUTENBERG, " leading and trailing ", "&quot;&amp;&lt;&gt;", "x-\n-\ny", "<skip<skipped>ped>"]
    texts += random_13a_texts(200)
    seen = set()
    tokenize_cases = []
    for text in texts:
        if text not in seen:
            seen.add(text)
            tokenize_cases.append([text, tokenizer(text)])

    assert BLEU().smooth_method == "exp"
    return {
        "sacrebleu": sacrebleu.__version__,
        "sentence": sentence_cases,
        "corpus": corpus_cases,
        "tokenize_13a": tokenize_cases,
    }


def write(name, data):
    path = OUT / name
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(text.encode('utf-8'))} bytes")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    assert len(ROUGE_PAIRS) >= 60, len(ROUGE_PAIRS)
    assert len(BLEU_SENTENCES) + len(BLEU_CORPORA) >= 40
    write("rouge.json", rouge_vectors())
    write("bleu.json", bleu_vectors())
    write("porter.json", porter_vectors())


if __name__ == "__main__":
    main()
