//! Local models through the real binary: `versus model tiny`, `model inspect`, `chat`, `demo`,
//! and local models in `versus run` (cache, failures). Numeric exactness against transformers is
//! tested in versus-engine; here each test checks what a person at the terminal sees.
//! New cases for local-model commands go here.

mod support;

use support::{str_field, Sandbox};

/// `versus model tiny <sandbox>/NAME --arch ARCH --seed SEED`, returning the folder.
fn tiny(sandbox: &Sandbox, name: &str, arch: &str, seed: &str) -> std::path::PathBuf {
    let dir = sandbox.path().join(name);
    let dir_text = dir.display().to_string();
    sandbox
        .versus(&["model", "tiny", &dir_text, "--arch", arch, "--seed", seed])
        .success();
    dir
}

fn inspect_json(sandbox: &Sandbox, spec: &str) -> serde_json::Value {
    let output = sandbox
        .versus(&["model", "inspect", spec, "--format", "json"])
        .success();
    serde_json::from_str(&output.stdout).expect("inspect prints JSON")
}

#[test]
fn tiny_models_are_reproducible_and_inspectable() {
    let sandbox = Sandbox::new();
    let a = tiny(&sandbox, "a", "phi3", "1");
    let b = tiny(&sandbox, "b", "phi3", "1");
    let c = tiny(&sandbox, "c", "phi3", "2");
    let weights = |dir: &std::path::Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert_eq!(weights(&a), weights(&b), "same seed, same weights");
    assert_ne!(weights(&a), weights(&c), "another seed, other weights");
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(a.join(file).is_file(), "{file} is written");
    }

    for (arch, class) in [
        ("phi3", "Phi3ForCausalLM"),
        ("llama", "LlamaForCausalLM"),
        ("qwen2", "Qwen2ForCausalLM"),
    ] {
        let dir = tiny(&sandbox, arch, arch, "0");
        let info = inspect_json(&sandbox, &format!("local:{}", dir.display()));
        assert_eq!(str_field(&info, "architecture"), class);
        assert!(info["parameters"].as_u64().unwrap() > 100_000);
        assert_eq!(str_field(&info, "device"), "cpu");
        assert!(str_field(&info, "dtype").starts_with("f32"), "{info}");
        assert!(!info["stop_token_ids"].as_array().unwrap().is_empty());
        assert!(str_field(&info, "chat_template").contains("messages"));
    }
    let table = sandbox
        .versus(&["model", "inspect", &format!("local:{}", a.display())])
        .success();
    assert!(table.stdout.contains("Phi3ForCausalLM"), "{table}");
    assert!(table.stdout.contains("chat template:"), "{table}");
    // `ID=SPEC`, as every model argument takes it.
    let named = inspect_json(&sandbox, &format!("mine=local:{}", a.display()));
    assert_eq!(str_field(&named, "architecture"), "Phi3ForCausalLM");
}

#[test]
fn chat_streams_one_answer_and_seeds_repeat() {
    let sandbox = Sandbox::new();
    let dir = tiny(&sandbox, "m", "qwen2", "0");
    let spec = format!("local:{}", dir.display());
    let chat = |seed: &str| {
        sandbox
            .versus(&[
                "chat",
                &spec,
                "Write a poem",
                "--system",
                "Be brief.",
                "--max-tokens",
                "12",
                "--temperature",
                "0.9",
                "--seed",
                seed,
            ])
            .success()
    };
    let first = chat("4");
    assert!(!first.stdout.trim().is_empty(), "{first}");
    assert!(first.stderr.contains("answer tokens"), "{first}");
    assert_eq!(chat("4").stdout, first.stdout, "same seed, same answer");
    // One generation: flags about a run's many requests are not chat's.
    sandbox
        .versus(&["chat", &spec, "Hi", "--samples", "3"])
        .usage_error(&["--samples"]);
    sandbox
        .versus(&["chat", &spec, "Hi", "--max-tokens", "0"])
        .usage_error(&["--max-tokens must be at least 1"]);
}

#[test]
fn demo_runs_the_seed_suite_offline() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .versus(&["demo", "--dir", "demo", "--max-tokens", "16"])
        .success();
    assert!(output.stdout.contains("report: demo/report.md"), "{output}");
    assert!(
        output.stdout.contains("html report: demo/report.html"),
        "{output}"
    );
    // The hint names the database the demo used (the test's own, through VERSUS_DB).
    assert!(
        output.stdout.contains("browse and vote: versus --db "),
        "{output}"
    );
    assert!(output.stdout.contains("versus.db view"), "{output}");
    assert!(output.stdout.contains("random weights"), "{output}");
    let html = std::fs::read_to_string(sandbox.path().join("demo/report.html")).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..html.len().min(200)]
    );
    assert!(
        html.contains("tiny-qwen2"),
        "the HTML report names the models"
    );
    let report = std::fs::read_to_string(sandbox.path().join("demo/report.md")).unwrap();
    for needle in [
        "#### tiny-phi3",
        "#### tiny-qwen2",
        "How should I explain machine learning to someone new to the field?",
        "Phi3ForCausalLM",
        "Qwen2ForCausalLM",
    ] {
        assert!(report.contains(needle), "report lacks {needle:?}");
    }
    let json = sandbox.report_json(&[]);
    assert_eq!(json.count_status("ok"), 10, "5 seed tasks x 2 tiny models");
}

#[test]
fn local_answers_are_cached_and_a_broken_model_fails_alone() {
    let sandbox = Sandbox::new();
    let good = tiny(&sandbox, "good", "llama", "0");
    let broken = tiny(&sandbox, "broken", "phi3", "0");
    // Cut the weights file in half: loading must fail with the file named, not panic.
    let weights = broken.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    sandbox.suite(format!(
        "[[models]]\nid = \"good\"\nspec = \"local:{}\"\n[[models]]\nid = \"broken\"\nspec = \"local:{}\"\n[defaults]\nmax_tokens = 8\n[[tasks]]\nid = \"a\"\nprompt = \"Hello\"\n[[tasks]]\nid = \"b\"\nprompt = \"Bye\"\n",
        good.display(),
        broken.display()
    ));
    let first = sandbox.run(&[]).code(1);
    assert!(first.stderr.contains("model.safetensors"), "{first}");
    let report = sandbox.report_json(&[]);
    assert_eq!(report.cells_with_status("ok").len(), 2);
    assert_eq!(report.cells_with_status("failed").len(), 2);
    let good_answer = str_field(report.result("a", "good"), "output");
    let metadata = &report.json["models"][0]["metadata"];
    assert_eq!(str_field(metadata, "architecture"), "LlamaForCausalLM");

    // Greedy answers of a local model are reproducible, so a new run takes them from the cache
    // (without --fresh it would resume the first run, which has failed cells).
    sandbox.run(&["--fresh"]).code(1);
    let again = sandbox.report_json(&[]);
    assert_eq!(again.result("a", "good")["cached"], true);
    assert_eq!(str_field(again.result("a", "good"), "output"), good_answer);
}

#[test]
fn bad_local_specs_say_what_is_wrong() {
    let sandbox = Sandbox::new();
    sandbox
        .versus(&["model", "inspect", "local:/surely/not/here"])
        .usage_error(&["no such model folder"]);
    sandbox
        .versus(&["model", "inspect", "openai:gpt-4o-mini"])
        .usage_error(&["hosted"]);
    let not_gguf = sandbox.write("x.gguf", b"not a gguf file at all");
    sandbox
        .versus(&["chat", &format!("gguf:{}", not_gguf.display()), "hi"])
        .usage_error(&["x.gguf"]);
}
