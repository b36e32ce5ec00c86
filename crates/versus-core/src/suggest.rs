//! "Did you mean" suggestions for misspelt keys, providers and ids.

/// The candidate closest to `word`, if any is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(similarity, _)| *similarity >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let keys = ["prompt", "system", "messages", "category"];
        assert_eq!(closest("promt", keys), Some("prompt"));
        assert_eq!(closest("categroy", keys), Some("category"));
        assert_eq!(closest("zebra", keys), None);
    }
}
