//! The README and docs/*.md as a new user meets them: every `sh` example runs as written (offline,
//! against the fake OpenAI server and tiny local models; see `docs_harness/runner.rs` for what
//! stands in for what), examples marked `<!-- needs: ... -->` at least parse, every subcommand
//! and flag of `--help` is documented, and every flag the docs name exists. The harness is tested
//! on small synthetic pages below, so that a README showing a command the binary rejects is known
//! to fail this test.

mod docs_harness;
mod support;

use docs_harness::runner::Harness;
use docs_harness::{coverage, Docs};

#[test]
fn every_shell_example_parses_as_the_binary_parses_it() {
    let failures = Docs::load().parse_failures();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shell_example_runs_offline_as_written() {
    let docs = Docs::load();
    let blocks: Vec<_> = docs.sh_blocks().filter(|b| b.runs()).collect();
    // Most examples run: a README whose blocks all went missing or all got marked is a mistake.
    assert!(
        blocks.len() >= 5,
        "only {} runnable sh blocks",
        blocks.len()
    );
    let harness = Harness::new(docs.suite_reference());
    let failures = harness.run_all(&blocks);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_subcommand_and_flag_is_documented() {
    let missing = coverage::undocumented(&Docs::load());
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_flag_the_docs_name_exists() {
    let unknown = coverage::unknown_flags(&Docs::load());
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

// ---- the harness, on synthetic pages ----

fn page(markdown: &str) -> Docs {
    Docs::from_text(&[("PAGE.md", markdown)]).expect("the page reads")
}

#[test]
fn a_command_the_binary_rejects_fails_every_check() {
    let docs = page("# Try\n\n```sh\nversus runs --no-such-flag\n```\n");
    let parse = docs.parse_failures();
    assert_eq!(parse.len(), 1, "{parse:?}");
    assert!(
        parse[0].starts_with("PAGE.md:4: `versus runs --no-such-flag`")
            && parse[0].contains("'--no-such-flag'"),
        "{parse:?}"
    );
    let unknown = coverage::unknown_flags(&docs);
    assert!(
        unknown
            .iter()
            .any(|u| u.contains("`versus runs` has no --no-such-flag")),
        "{unknown:?}"
    );
    let block = docs.sh_blocks().next().expect("a block");
    let ran = Harness::new(None).run_block(block).unwrap_err();
    assert!(
        ran.contains("PAGE.md:3: line 4: `versus runs --no-such-flag`"),
        "{ran}"
    );
    assert!(ran.contains("unexpected argument"), "{ran}");
}

#[test]
fn marked_examples_are_still_parsed() {
    let docs = page(
        "<!-- needs: network, key -->\n```sh\nversus run --builtin seed --quantise q8_0\n```\n",
    );
    let block = docs.sh_blocks().next().expect("a block");
    assert!(!block.runs());
    let parse = docs.parse_failures();
    assert!(parse.iter().any(|p| p.contains("--quantise")), "{parse:?}");
}

#[test]
fn an_exit_code_other_than_the_documented_one_fails() {
    let harness = Harness::new(None);
    let run = |markdown: &str| {
        let docs = page(markdown);
        let block = docs.sh_blocks().next().expect("a block").clone();
        harness.run_block(&block)
    };
    let failed = run("```sh\nversus report --run 42\n```\n").unwrap_err();
    assert!(failed.contains("expected exit 0"), "{failed}");
    assert!(failed.contains("no database"), "{failed}");
    run("```sh\nversus report --run 42   # exit 2: there is no run yet\n```\n")
        .expect("the documented exit code");
    let wrong = run("```sh\nversus report --run 42   # exit 1\n```\n").unwrap_err();
    assert!(wrong.contains("expected exit 1"), "{wrong}");
}

#[test]
fn examples_run_in_order_with_stand_ins_for_models_and_servers() {
    let harness = Harness::new(None);
    let run = |markdown: &str| {
        let docs = page(markdown);
        let block = docs.sh_blocks().next().expect("a block").clone();
        harness.run_block(&block)
    };
    // A hosted model is the fake server; a local model and the Hub's are tiny stand-ins.
    run("```sh\nversus chat openai:gpt-4o-mini Hi\nversus chat mine=local:./models/tiny Hi --max-tokens 4\nversus model inspect hf:org/model\n```\n")
        .expect("stand-ins answer");
    // A server is started on a free port and must print the URL its comment shows.
    run("```sh\nversus serve -m local:./tiny   # http://127.0.0.1:8080/v1\n```\n")
        .expect("the server starts and stops");
    let wrong =
        run("```sh\nversus serve -m local:./tiny   # http://localhost:8080/v1\n```\n").unwrap_err();
    assert!(
        wrong.contains("the comment shows http://localhost:PORT/v1"),
        "{wrong}"
    );
    // What a block exports reaches its later commands; `...` is a secret the test supplies.
    run("```sh\nexport VERSUS_SERVE_KEY=...\nversus serve -m local:./t --host 0.0.0.0 --api-key-env VERSUS_SERVE_KEY\n```\n")
        .expect("the exported key");
    // Stand-ins stay in the example's folder; a program that is not installed is named.
    let outside = run("```sh\nversus chat local:/opt/models/x Hi\n```\n").unwrap_err();
    assert!(outside.contains("relative path"), "{outside}");
    let missing = run("```sh\nsurely-not-a-program --flag\n```\n").unwrap_err();
    assert!(
        missing.contains("`surely-not-a-program` is not installed"),
        "{missing}"
    );
    // Shell syntax the runner cannot run is refused when the page is read.
    let piped = Docs::from_text(&[("PAGE.md", "```sh\nversus runs | head\n```\n")]).err();
    assert!(piped.is_some_and(|e| e.contains("PAGE.md:2: `|` is shell syntax")));
}

#[test]
fn undocumented_subcommands_and_flags_are_found() {
    let docs = page(
        "# Runs\n\n`versus runs --format json` lists runs.\n\n# Ratings\n\n`versus ratings` rates; `--rounds` sets the bootstrap.\n\n# Other\n\n`--seed`\n",
    );
    let missing = coverage::undocumented(&docs);
    let has = |text: &str| missing.iter().any(|m| m.contains(text));
    assert!(!has("`versus runs --format`"), "{missing:?}");
    assert!(
        !has("`versus ratings --rounds`"),
        "a flag named in the section: {missing:?}"
    );
    assert!(
        has("`versus ratings --seed`"),
        "named elsewhere only: {missing:?}"
    );
    assert!(has("`versus serve` is not shown"), "{missing:?}");
    assert!(has("`versus --db` is not documented"), "{missing:?}");
}

#[test]
fn flags_the_docs_name_are_checked_where_they_belong() {
    let docs = page(
        "`versus ratings --style-control` and `versus ratings --quantize q8_0`; `--top-k`, `--nope`; `cargo build --features cuda`; `--db x versus.db`\n",
    );
    let unknown = coverage::unknown_flags(&docs);
    assert_eq!(unknown.len(), 2, "{unknown:?}");
    assert!(
        unknown[0].contains("`versus ratings` has no --quantize"),
        "{unknown:?}"
    );
    assert!(
        unknown[1].contains("no versus command has --nope"),
        "{unknown:?}"
    );
}
