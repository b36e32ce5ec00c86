//! Suites compiled into the binary, so `versus run --builtin seed` works anywhere.

/// The seed article's tasks, verbatim, with Phi-4 and GPT-4o-mini as the models
/// (the same file as `examples/seed.toml`).
pub const SEED: &str = include_str!("../../../examples/seed.toml");

/// Every builtin suite: (name, TOML text).
pub const BUILTIN_SUITES: &[(&str, &str)] = &[("seed", SEED)];

pub fn builtin_suite(name: &str) -> Option<&'static str> {
    BUILTIN_SUITES
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Suite, SuiteSource};

    #[test]
    fn seed_suite_holds_the_articles_tasks() {
        let suite = Suite::parse(&SuiteSource {
            origin: "builtin:seed",
            text: SEED,
        })
        .unwrap();
        let ids: Vec<&str> = suite.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "explain-ml",
                "sunrise",
                "fibonacci",
                "childrens-story",
                "gutenberg-summary"
            ]
        );
        let models: Vec<&str> = suite.models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(models, ["phi-4", "gpt-4o-mini"]);
        assert_eq!(suite.defaults.params.temperature, Some(0.0));
        let explain = &suite.tasks[0];
        assert_eq!(
            explain.system_text().as_deref(),
            Some("You are a data scientist providing insights and explanations to a curious audience.")
        );
        assert_eq!(
            suite.tasks[2].prompt_text(),
            "Implement a function to calculate the nth Fibonacci number using dynamic programming."
        );
        assert_eq!(
            suite.tasks[3].prompt_text(),
            "Write a short children\u{2019}s story"
        );
        let summary = &suite.tasks[4];
        assert!(summary
            .prompt_text()
            .starts_with("summarize the following text\nJohannes Gutenberg (1398 – 1468)"));
        assert!(summary
            .prompt_text()
            .ends_with("bolstered the emerging middle class."));
        assert!(summary.reference.is_some());
    }
}
