//! Mistakes in a suite or on the command line: `versus run` exits with code 2 before calling any
//! model or creating the database, and stderr says where the mistake is (file:line:col and the
//! field) and, where it can, what was meant.
//!
//! New mistakes go here, one `rejected(...)` line each. Helpers are in `support/mod.rs`.

mod support;

use support::*;
use versus_testkit::{FakeServer, Script};

/// Runs `versus run ARGS` with `suite.toml` holding `suite` (when given) and expects exit code
/// 2 with every needle in stderr, nothing on stdout, no request sent and no database created.
#[track_caller]
fn rejected(suite: Option<&str>, args: &[&str], needles: &[&str]) -> Output {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    if let Some(suite) = suite {
        sandbox.suite(suite.replace("{URL}", &server.base_url()));
    }
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let output = sandbox.versus(&full).usage_error(needles);
    assert!(output.stdout.is_empty(), "{output}");
    assert_eq!(server.request_count(), 0, "no model is called\n{output}");
    assert!(!sandbox.db().exists(), "no database is created\n{output}");
    output
}

const MODEL: &str = "[[models]]\nspec = \"openai-compatible:m1\"\nbase_url = \"{URL}\"\n";

#[test]
fn an_unknown_key_is_located_and_a_near_one_suggested() {
    // Line 6 of the suite: `promt = ...`.
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\npromt = \"Hello?\"\n");
    let output = rejected(
        Some(&suite),
        &["suite.toml"],
        &[
            "suite.toml:6:1: unknown key `promt`",
            "6 | promt = \"Hello?\"",
            "did you mean `prompt`?",
        ],
    );
    assert!(output.stderr.starts_with("error: "), "{output}");
}

#[test]
fn an_unknown_key_in_defaults_is_located() {
    let suite =
        format!("[defaults]\ntemprature = 0.5\n{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n");
    rejected(
        Some(&suite),
        &["suite.toml"],
        &[
            "suite.toml:2:1: unknown key `temprature`",
            "did you mean `temperature`?",
        ],
    );
}

#[test]
fn a_duplicate_task_id_points_at_the_second_task() {
    let suite = format!(
        "{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n\n[[tasks]]\nid = \"a\"\nprompt = \"y\"\n"
    );
    rejected(
        Some(&suite),
        &["suite.toml"],
        &[
            "suite.toml:8:1: duplicate task id `a`",
            "line 4 already defines it",
        ],
    );
}

#[test]
fn an_empty_prompt_points_at_the_prompt() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"  \"\n");
    rejected(
        Some(&suite),
        &["suite.toml"],
        &[
            "suite.toml:6:10: task `a` has an empty `prompt`",
            "6 | prompt = \"  \"",
        ],
    );
}

#[test]
fn a_task_without_a_prompt_is_rejected() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\n");
    rejected(
        Some(&suite),
        &["suite.toml"],
        &["suite.toml:5:6: task `a` has no `prompt`", "add `prompt ="],
    );
}

#[test]
fn a_temperature_out_of_range_is_located() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\ntemperature = 3.0\n");
    rejected(
        Some(&suite),
        &["suite.toml"],
        &["suite.toml:7:15: `temperature` is 3, outside 0..=2"],
    );
}

#[test]
fn a_missing_image_points_at_the_line_naming_it() {
    let suite = format!(
        "{MODEL}modalities = [\"text\", \"image\"]\n\n[[tasks]]\nid = \"look\"\nprompt = \"What is it?\"\nimages = [\"missing.png\"]\n"
    );
    rejected(
        Some(&suite),
        &["suite.toml"],
        &[
            "suite.toml:9:11: task `look`: cannot read image",
            "missing.png",
            "9 | images = [\"missing.png\"]",
        ],
    );
}

#[test]
fn an_image_that_is_not_an_image_is_rejected() {
    let suite = format!(
        "{MODEL}\n[[tasks]]\nid = \"look\"\nprompt = \"What is it?\"\nimages = [\"notes.txt\"]\n"
    );
    rejected(
        Some(&suite),
        &["suite.toml"],
        &["suite.toml:8:11: task `look`: `notes.txt` is not a PNG, JPEG, GIF or WebP file"],
    );
}

#[test]
fn an_invalid_model_spec_is_located() {
    let suite = "[[models]]\nspec = \"opena:gpt-4o\"\n[[tasks]]\nid = \"a\"\nprompt = \"x\"\n";
    rejected(
        Some(suite),
        &["suite.toml"],
        &["suite.toml:2:8:", "did you mean `openai`"],
    );
}

#[test]
fn a_toml_syntax_error_is_located() {
    rejected(
        Some("[[tasks]\nid = \"a\"\n"),
        &["suite.toml"],
        &["suite.toml:1:"],
    );
}

#[test]
fn an_unknown_task_suggests_a_near_one() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"sunrise\"\nprompt = \"x\"\n");
    rejected(
        Some(&suite),
        &["suite.toml", "--task", "sunrse"],
        &["--task sunrse: the suite has no such task; did you mean `sunrise`?"],
    );
}

#[test]
fn an_unknown_category_lists_the_known_ones() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncategory = \"coding\"\n");
    rejected(
        Some(&suite),
        &["suite.toml", "--category", "poetry"],
        &["--category poetry: no task has this category (categories: coding)"],
    );
}

#[test]
fn an_unknown_builtin_names_the_builtins() {
    rejected(
        None,
        &["--builtin", "nope"],
        &["there is no builtin suite `nope` (builtin suites: seed)"],
    );
    rejected(None, &["--builtin", "sed"], &["did you mean `seed`?"]);
}

#[test]
fn no_suite_at_all_says_how_to_name_one() {
    rejected(None, &[], &["name a suite", "versus run --builtin seed"]);
}

#[test]
fn a_missing_suite_file_is_named() {
    rejected(
        None,
        &["nowhere.toml"],
        &["cannot read the suite file nowhere.toml"],
    );
}

#[test]
fn a_suite_without_models_asks_for_some() {
    rejected(
        Some("[[tasks]]\nid = \"a\"\nprompt = \"x\"\n"),
        &["suite.toml"],
        &[
            "suite.toml names no models",
            "add [[models]] to it or pass --model SPEC",
        ],
    );
}

#[test]
fn a_suite_without_tasks_asks_for_some() {
    rejected(
        Some(MODEL),
        &["suite.toml"],
        &["suite.toml: the suite has no tasks"],
    );
}

#[test]
fn a_bad_model_flag_is_rejected() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n");
    rejected(
        Some(&suite),
        &["suite.toml", "--model", "gpt-4o-mini"],
        &["--model gpt-4o-mini:", "PROVIDER:NAME"],
    );
}

#[test]
fn two_models_with_one_id_must_be_named_apart() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n");
    rejected(
        Some(&suite),
        &[
            "suite.toml",
            "--model",
            "openai-compatible:m1",
            "--model",
            "openai:m1",
        ],
        &["two models are called `m1`", "ID=SPEC"],
    );
}

#[test]
fn out_of_range_overrides_are_rejected() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n");
    rejected(
        Some(&suite),
        &["suite.toml", "--temperature", "2.5"],
        &["--temperature 2.5: must be between 0 and 2"],
    );
    rejected(
        Some(&suite),
        &["suite.toml", "--concurrency", "0"],
        &["--concurrency must be at least 1"],
    );
    rejected(
        Some(&suite),
        &["suite.toml", "--timeout", "0"],
        &["--timeout must be a positive number of seconds"],
    );
}

#[test]
fn suite_and_builtin_exclude_each_other() {
    let suite = format!("{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\n");
    rejected(
        Some(&suite),
        &["suite.toml", "--builtin", "seed"],
        &["cannot be used with"],
    );
}

#[test]
fn task_and_category_filters_that_select_nothing_are_rejected() {
    let suite = format!(
        "{MODEL}[[tasks]]\nid = \"a\"\nprompt = \"x\"\ncategory = \"coding\"\n\n[[tasks]]\nid = \"b\"\nprompt = \"y\"\ncategory = \"creative\"\n"
    );
    rejected(
        Some(&suite),
        &["suite.toml", "--task", "a", "--category", "creative"],
        &["--task a and --category creative together select no task"],
    );
}

#[test]
fn a_missing_reference_file_points_at_the_line_naming_it() {
    let suite = format!(
        "{MODEL}[[tasks]]\nid = \"sum\"\nprompt = \"Summarize.\"\nreference_file = \"gone.txt\"\n"
    );
    rejected(
        Some(&suite),
        &["suite.toml"],
        &[
            "suite.toml:7:18: task `sum`: cannot read",
            "gone.txt",
            "7 | reference_file = \"gone.txt\"",
        ],
    );
}

#[test]
fn invalid_utf8_points_at_the_first_bad_byte() {
    let sandbox = Sandbox::with_key();
    let mut bytes = b"name = \"x\"\n[[tasks]]\nid = \"a\"\nprompt = \"caf".to_vec();
    bytes.extend_from_slice(&[0xe9, b'"', b'\n']);
    sandbox.write("latin1.toml", bytes);
    sandbox.versus(&["run", "latin1.toml"]).usage_error(&[
        "latin1.toml:4:14: ",
        "not valid UTF-8",
        "0xe9",
    ]);
}

#[test]
fn a_deeply_nested_value_gives_a_short_error() {
    let nested = format!("x = {}1{}\n", "[".repeat(20_000), "]".repeat(20_000));
    let output = rejected(Some(&nested), &["suite.toml"], &["suite.toml:1:"]);
    assert!(output.stderr.len() < 2_000, "{} bytes", output.stderr.len());
}

#[test]
fn endpoint_pool_mistakes_are_located() {
    let tasks = "[[tasks]]\nid = \"a\"\nprompt = \"x\"\n";
    let both = format!("{MODEL}base_urls = [\"{{URL}}\"]\n{tasks}");
    rejected(
        Some(&both),
        &["suite.toml"],
        &["suite.toml:4:13:", "has both `base_url` and `base_urls`"],
    );
    let budget = format!(
        "[[models]]\nspec = \"openai-compatible:m1\"\nbase_urls = [\"{{URL}}\"]\nrequests_per_minute = 0\n{tasks}"
    );
    rejected(
        Some(&budget),
        &["suite.toml"],
        &[
            "suite.toml:4:23:",
            "`requests_per_minute` is 0, outside 1..=1000000",
        ],
    );
}
