//! The Porter stemmer exactly as NLTK's `PorterStemmer()` runs it in its default
//! `NLTK_EXTENSIONS` mode: the stemmer Google's `rouge-score` builds when `use_stemmer=True`.
//!
//! This is a step-by-step port of `nltk/stem/porter.py` (NLTK 3.10.4), quirks included: each
//! rule list stops at the first suffix that matches even when that rule's condition fails, the
//! irregular forms are looked up before anything else, and NLTK's extensions (`ies`/`ied` on
//! four-letter words, `y -> i` only after a consonant, `alli` first, `fulli`, `logi`, the
//! two-letter `*o` case) are all in. Words are handled as `char`s, as Python indexes its strings.

/// NLTK's table of irregular forms: a word found here stems to the form on the right and
/// skips every step.
const IRREGULAR_FORMS: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

/// Stems one word as NLTK's `PorterStemmer().stem(word)` does (which lowercases it first).
///
/// `rouge-score` calls this only for tokens longer than three characters; that rule belongs to
/// its tokenizer (see `rouge::tokenize`), not to the stemmer.
pub fn stem(word: &str) -> String {
    let lowered = word.to_lowercase();
    if let Some((_, irregular)) = IRREGULAR_FORMS.iter().find(|(form, _)| *form == lowered) {
        return (*irregular).to_string();
    }
    // NLTK measures the word as given, before lowercasing, to skip one- and two-letter words.
    if word.chars().count() <= 2 {
        return lowered;
    }
    let mut chars: Vec<char> = lowered.chars().collect();
    chars = step1a(&chars);
    chars = step1b(&chars);
    chars = step1c(&chars);
    chars = step2(&chars);
    chars = step3(&chars);
    chars = step4(&chars);
    chars = step5a(&chars);
    chars = step5b(&chars);
    chars.into_iter().collect()
}

fn is_vowel(letter: char) -> bool {
    matches!(letter, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// For every position, whether the letter is a consonant in Porter's sense: not a vowel, and a
/// `y` only when the letter before it is not a consonant (a leading `y` is one). One pass, so a
/// run of `y`s costs nothing extra.
fn consonant_flags(word: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(word.len());
    for (index, &letter) in word.iter().enumerate() {
        let consonant = if is_vowel(letter) {
            false
        } else if letter == 'y' {
            index == 0 || !flags[index - 1]
        } else {
            true
        };
        flags.push(consonant);
    }
    flags
}

fn is_consonant(word: &[char], index: usize) -> bool {
    consonant_flags(&word[..=index])[index]
}

/// Porter's `m`: the number of vowel-consonant transitions in `[C](VC){m}[V]`.
fn measure(stem: &[char]) -> usize {
    consonant_flags(stem)
        .windows(2)
        .filter(|pair| !pair[0] && pair[1])
        .count()
}

fn has_positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

fn measure_greater_than_one(stem: &[char]) -> bool {
    measure(stem) > 1
}

fn contains_vowel(stem: &[char]) -> bool {
    consonant_flags(stem).iter().any(|&consonant| !consonant)
}

/// Condition `*d`: the word ends with a double consonant.
fn ends_double_consonant(word: &[char]) -> bool {
    let length = word.len();
    length >= 2 && word[length - 1] == word[length - 2] && is_consonant(word, length - 1)
}

/// Condition `*o`: the word ends consonant-vowel-consonant, the last not `w`, `x` or `y`; NLTK
/// also accepts a two-letter vowel-consonant word (with no `w`/`x`/`y` exception).
fn ends_cvc(word: &[char]) -> bool {
    let length = word.len();
    let flags = consonant_flags(word);
    (length >= 3
        && flags[length - 3]
        && !flags[length - 2]
        && flags[length - 1]
        && !matches!(word[length - 1], 'w' | 'x' | 'y'))
        || (length == 2 && !flags[0] && flags[1])
}

/// The stem left when `word` ends with `suffix`, `None` when it does not.
fn strip_suffix<'a>(word: &'a [char], suffix: &str) -> Option<&'a [char]> {
    let suffix_length = suffix.chars().count();
    if suffix_length > word.len() {
        return None;
    }
    let (stem, tail) = word.split_at(word.len() - suffix_length);
    tail.iter().copied().eq(suffix.chars()).then_some(stem)
}

fn ends_with(word: &[char], suffix: &str) -> bool {
    strip_suffix(word, suffix).is_some()
}

fn joined(stem: &[char], replacement: &str) -> Vec<char> {
    stem.iter().copied().chain(replacement.chars()).collect()
}

/// One suffix rule: `(suffix, replacement, condition on the stem left after removing suffix)`.
type Rule<'a> = (&'a str, &'a str, &'a dyn Fn(&[char]) -> bool);

/// NLTK's `_apply_rule_list`: the first rule whose suffix matches decides, and when its
/// condition fails the word is returned unchanged, without trying the later rules.
fn apply_rule_list(word: &[char], rules: &[Rule<'_>]) -> Vec<char> {
    for (suffix, replacement, condition) in rules {
        if let Some(stem) = strip_suffix(word, suffix) {
            return if condition(stem) {
                joined(stem, replacement)
            } else {
                word.to_vec()
            };
        }
    }
    word.to_vec()
}

fn always(_: &[char]) -> bool {
    true
}

/// Step 1a: plurals (`sses -> ss`, `ies -> i`, `ss -> ss`, `s -> `).
fn step1a(word: &[char]) -> Vec<char> {
    // NLTK extension: a four-letter `-ies` word keeps its `ie` ("dies" -> "die", "flies" -> "fli").
    if word.len() == 4 {
        if let Some(stem) = strip_suffix(word, "ies") {
            return joined(stem, "ie");
        }
    }
    apply_rule_list(
        word,
        &[
            ("sses", "ss", &always),
            ("ies", "i", &always),
            ("ss", "ss", &always),
            ("s", "", &always),
        ],
    )
}

/// Step 1b: `-eed`, `-ed`, `-ing`, and the tidying after the last two.
fn step1b(word: &[char]) -> Vec<char> {
    // NLTK extension: "spied" -> "spi" but "died" -> "die".
    if let Some(stem) = strip_suffix(word, "ied") {
        return joined(stem, if word.len() == 4 { "ie" } else { "i" });
    }
    // (m>0) EED -> EE; a word ending in `eed` never reaches the `ed` rule.
    if let Some(stem) = strip_suffix(word, "eed") {
        return if has_positive_measure(stem) {
            joined(stem, "ee")
        } else {
            word.to_vec()
        };
    }
    // (*v*) ED -> , (*v*) ING ->
    let Some(stem) = ["ed", "ing"]
        .iter()
        .filter_map(|suffix| strip_suffix(word, suffix))
        .find(|stem| contains_vowel(stem))
    else {
        return word.to_vec();
    };
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if let Some(shorter) = strip_suffix(stem, suffix) {
            return joined(shorter, replacement);
        }
    }
    // (*d and not (*L or *S or *Z)) -> single letter; a double l/s/z stops the rule list.
    if ends_double_consonant(stem) {
        let last = stem[stem.len() - 1];
        return if matches!(last, 'l' | 's' | 'z') {
            stem.to_vec()
        } else {
            stem[..stem.len() - 1].to_vec()
        };
    }
    // (m=1 and *o) -> E
    if measure(stem) == 1 && ends_cvc(stem) {
        joined(stem, "e")
    } else {
        stem.to_vec()
    }
}

/// Step 1c: `y -> i`, with NLTK's condition: only after a consonant that is not the whole stem
/// ("happy" -> "happi", "enjoy" and "by" stay).
fn step1c(word: &[char]) -> Vec<char> {
    let after_consonant = |stem: &[char]| stem.len() > 1 && is_consonant(stem, stem.len() - 1);
    apply_rule_list(word, &[("y", "i", &after_consonant)])
}

/// Step 2: double suffixes to single ones, when the stem has a positive measure.
fn step2(word: &[char]) -> Vec<char> {
    // NLTK extension: `alli -> al` is tried first and, when it applies, step 2 runs again on the
    // result ("radicalli" -> "radical").
    if let Some(stem) = strip_suffix(word, "alli") {
        if has_positive_measure(stem) {
            return step2(&joined(stem, "al"));
        }
    }
    // NLTK's `logi -> log` keeps the `l` with the stem when measuring it, so that short stems
    // like "geo" and "theo" behave like "archaeo" and "philo".
    let logi_condition = |_: &[char]| has_positive_measure(&word[..word.len() - 3]);
    apply_rule_list(
        word,
        &[
            ("ational", "ate", &has_positive_measure),
            ("tional", "tion", &has_positive_measure),
            ("enci", "ence", &has_positive_measure),
            ("anci", "ance", &has_positive_measure),
            ("izer", "ize", &has_positive_measure),
            // Martin Porter's `bli -> ble` replaces the paper's `abli -> able`.
            ("bli", "ble", &has_positive_measure),
            ("alli", "al", &has_positive_measure),
            ("entli", "ent", &has_positive_measure),
            ("eli", "e", &has_positive_measure),
            ("ousli", "ous", &has_positive_measure),
            ("ization", "ize", &has_positive_measure),
            ("ation", "ate", &has_positive_measure),
            ("ator", "ate", &has_positive_measure),
            ("alism", "al", &has_positive_measure),
            ("iveness", "ive", &has_positive_measure),
            ("fulness", "ful", &has_positive_measure),
            ("ousness", "ous", &has_positive_measure),
            ("aliti", "al", &has_positive_measure),
            ("iviti", "ive", &has_positive_measure),
            ("biliti", "ble", &has_positive_measure),
            ("fulli", "ful", &has_positive_measure),
            ("logi", "log", &logi_condition),
        ],
    )
}

/// Step 3: `-ic-`, `-full`, `-ness` and friends, when the stem has a positive measure.
fn step3(word: &[char]) -> Vec<char> {
    apply_rule_list(
        word,
        &[
            ("icate", "ic", &has_positive_measure),
            ("ative", "", &has_positive_measure),
            ("alize", "al", &has_positive_measure),
            ("iciti", "ic", &has_positive_measure),
            ("ical", "ic", &has_positive_measure),
            ("ful", "", &has_positive_measure),
            ("ness", "", &has_positive_measure),
        ],
    )
}

/// Step 4: removes the remaining suffixes when the stem's measure is above one.
fn step4(word: &[char]) -> Vec<char> {
    // (m>1 and (*S or *T)) ION ->
    let ion_condition =
        |stem: &[char]| measure_greater_than_one(stem) && matches!(stem.last(), Some('s' | 't'));
    apply_rule_list(
        word,
        &[
            ("al", "", &measure_greater_than_one),
            ("ance", "", &measure_greater_than_one),
            ("ence", "", &measure_greater_than_one),
            ("er", "", &measure_greater_than_one),
            ("ic", "", &measure_greater_than_one),
            ("able", "", &measure_greater_than_one),
            ("ible", "", &measure_greater_than_one),
            ("ant", "", &measure_greater_than_one),
            ("ement", "", &measure_greater_than_one),
            ("ment", "", &measure_greater_than_one),
            ("ent", "", &measure_greater_than_one),
            ("ion", "", &ion_condition),
            ("ou", "", &measure_greater_than_one),
            ("ism", "", &measure_greater_than_one),
            ("ate", "", &measure_greater_than_one),
            ("iti", "", &measure_greater_than_one),
            ("ous", "", &measure_greater_than_one),
            ("ive", "", &measure_greater_than_one),
            ("ize", "", &measure_greater_than_one),
        ],
    )
}

/// Step 5a: a final `e` goes when `m > 1`, or when `m = 1` and the stem does not end `*o`.
/// Unlike the other steps both conditions are tried, so this is not a rule list.
fn step5a(word: &[char]) -> Vec<char> {
    if let Some(stem) = strip_suffix(word, "e") {
        let stem_measure = measure(stem);
        if stem_measure > 1 || (stem_measure == 1 && !ends_cvc(stem)) {
            return stem.to_vec();
        }
    }
    word.to_vec()
}

/// Step 5b: `(m > 1 and *d and *L) -> single letter` ("controll" -> "control", "roll" stays).
fn step5b(word: &[char]) -> Vec<char> {
    // NLTK measures the word less one `l`, not the stem less both.
    if ends_with(word, "ll") && measure_greater_than_one(&word[..word.len() - 1]) {
        return word[..word.len() - 1].to_vec();
    }
    word.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_examples_stem_as_in_nltk() {
        for (word, expected) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("conditional", "condit"),
            ("electrical", "electr"),
            ("hopefulness", "hope"),
            ("adjustable", "adjust"),
            ("replacement", "replac"),
            ("bowdlerize", "bowdler"),
            ("controll", "control"),
            ("roll", "roll"),
        ] {
            assert_eq!(stem(word), expected, "{word}");
        }
    }

    #[test]
    fn nltk_extensions_and_irregular_forms_apply() {
        assert_eq!(stem("dying"), "die");
        assert_eq!(stem("skies"), "sky");
        assert_eq!(stem("news"), "news");
        assert_eq!(stem("dies"), "die");
        assert_eq!(stem("flies"), "fli");
        assert_eq!(stem("enjoy"), "enjoy");
        assert_eq!(stem("generously"), "gener");
        assert_eq!(stem("Running"), "run");
    }

    #[test]
    fn short_words_are_only_lowercased() {
        assert_eq!(stem("Is"), "is");
        assert_eq!(stem("as"), "as");
        assert_eq!(stem(""), "");
    }

    #[test]
    fn measure_counts_vowel_consonant_pairs() {
        let chars = |text: &str| text.chars().collect::<Vec<_>>();
        assert_eq!(measure(&chars("tree")), 0);
        assert_eq!(measure(&chars("by")), 0);
        assert_eq!(measure(&chars("trouble")), 1);
        assert_eq!(measure(&chars("ivy")), 1);
        assert_eq!(measure(&chars("private")), 2);
        assert_eq!(measure(&chars("orrery")), 2);
    }
}
