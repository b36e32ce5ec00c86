//! Endpoint pools through the real binary (docs/endpoint-pools.md): a model's requests spread
//! over several fake servers, a dead replica ejected and its share taken by the others, the
//! cache key naming the model rather than the replica (unless `pool_in_cache_key`), and the key
//! rules applied to every endpoint.
//!
//! New pool behaviours get one test here. Helpers are in `support/mod.rs`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;
use versus_testkit::{FakeServer, Fault, Rule, Script};

/// A fake server answering each request after `latency`.
fn replica(latency: Duration) -> FakeServer {
    FakeServer::start_in_thread(Script::new().fixed_latency(latency)).expect("start a fake server")
}

/// A suite with `openai-compatible:m` on `urls` (and `extra` model lines), `tasks` tasks, and
/// temperature 0 so that answers are reusable from the cache.
fn pool_suite(urls: &[String], extra: &str, tasks: usize) -> String {
    let list = urls
        .iter()
        .map(|url| toml_string(url))
        .collect::<Vec<_>>()
        .join(", ");
    let mut suite = SuiteBuilder::new().default("temperature", "0");
    for index in 0..tasks {
        suite = suite.task(&format!("t{index}"), &format!("Question number {index}?"));
    }
    format!(
        "{}\n[[models]]\nspec = \"openai-compatible:m\"\nbase_urls = [{list}]\n{extra}\n",
        suite.build()
    )
}

#[test]
fn a_dead_endpoint_is_ejected_and_its_share_moves_to_the_others() {
    const TASKS: usize = 60;
    let sandbox = Sandbox::new();
    let latency = Duration::from_millis(20);
    let (first, second) = (replica(latency), replica(latency));
    let dying = replica(latency);
    sandbox.suite(pool_suite(
        &[first.base_url(), second.base_url(), dying.base_url()],
        "concurrency = 2",
        TASKS,
    ));
    let child = sandbox
        .command(&["run", "suite.toml", "--no-score"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start versus");
    // The third replica answers a few requests, then goes away mid-run.
    wait_until(
        Duration::from_secs(20),
        "the third replica's requests",
        || dying.request_count() >= 3,
    );
    let dying_host = dying.addr().to_string();
    drop(dying);
    let output = child.wait_with_output().expect("versus runs to its end");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "model `m`: endpoint {dying_host} ejected after 3 failures in a row"
        )),
        "{stderr}"
    );

    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), TASKS, "every cell answered");
    for index in 0..TASKS {
        let result = report.result(&format!("t{index}"), "m");
        assert_eq!(
            str_field(result, "output"),
            format!("Answer from m: Question number {index}?")
        );
    }
    // The two live replicas answered everything the dead one did not: more than their thirds.
    let (a, b) = (first.request_count(), second.request_count());
    assert!(a + b >= TASKS - 3, "{a} + {b}");
    assert!(a > TASKS / 3 && b > TASKS / 3, "{a}, {b}");
}

#[test]
fn replicas_share_cached_answers_unless_the_pool_is_in_the_cache_key() {
    let sandbox = Sandbox::new();
    let servers: Vec<FakeServer> = (0..3).map(|_| replica(Duration::ZERO)).collect();
    let url = |index: usize| servers[index].base_url();
    let total = || servers.iter().map(FakeServer::request_count).sum::<usize>();

    sandbox.suite(pool_suite(&[url(0), url(1)], "", 4));
    sandbox.run(&["--no-score"]).success();
    assert_eq!(total(), 4);
    // Other replicas of the same model: the answers come from the cache.
    sandbox.suite(pool_suite(&[url(1), url(2)], "", 4));
    sandbox.run(&["--no-score", "--fresh"]).success();
    assert_eq!(total(), 4, "no replica is asked again");
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), 4);
    assert!(report.results().iter().all(|r| r["cached"] == true));

    // With the pool in the cache key, each set of replicas has answers of its own.
    sandbox.suite(pool_suite(&[url(0), url(1)], "pool_in_cache_key = true", 4));
    sandbox.run(&["--no-score", "--fresh"]).success();
    assert_eq!(total(), 8, "asked anew under the pool's own key");
    sandbox.suite(pool_suite(&[url(1), url(0)], "pool_in_cache_key = true", 4));
    sandbox.run(&["--no-score", "--fresh"]).success();
    assert_eq!(
        total(),
        8,
        "the same replicas in another order share the key"
    );
    sandbox.suite(pool_suite(&[url(1), url(2)], "pool_in_cache_key = true", 4));
    sandbox.run(&["--no-score", "--fresh"]).success();
    assert_eq!(total(), 12, "other replicas are asked");
}

#[test]
fn every_endpoint_of_a_pool_follows_the_key_rules() {
    let sandbox = Sandbox::new()
        .env("VERSUS_TEST_A_KEY", "secret-a-4242")
        .env("VERSUS_TEST_B_KEY", "secret-b-4242")
        .env("VERSUS_TEST_PRIVATE", "private-value-77");
    let server = replica(Duration::ZERO);
    let keys = "api_key_envs = [\"VERSUS_TEST_A_KEY\", \"VERSUS_TEST_B_KEY\"]";

    // The second URL is another machine over plain http: refused before anything is sent.
    sandbox.suite(pool_suite(
        &[server.base_url(), "http://203.0.113.9/v1".to_string()],
        keys,
        2,
    ));
    sandbox.run(&[]).usage_error(&[
        "VERSUS_TEST_A_KEY",
        "over plain http to 203.0.113.9",
        "--allow-insecure-http",
    ]);
    // A variable that is not a key variable, in second place.
    sandbox.suite(pool_suite(
        &[server.base_url()],
        "api_key_envs = [\"VERSUS_TEST_A_KEY\", \"VERSUS_TEST_PRIVATE\"]",
        2,
    ));
    sandbox
        .run(&[])
        .usage_error(&["--allow-key-env VERSUS_TEST_PRIVATE"]);
    assert_eq!(server.request_count(), 0, "nothing is sent");

    // Two keys on one loopback replica: each key is announced, both are used, none is printed.
    sandbox.suite(pool_suite(&[server.base_url()], keys, 6));
    let output = sandbox.run(&["--no-score"]).success();
    for variable in ["VERSUS_TEST_A_KEY", "VERSUS_TEST_B_KEY"] {
        assert!(
            output
                .stderr
                .contains(&format!("the key in {variable} goes to 127.0.0.1:")),
            "{output}"
        );
    }
    assert!(!output.stderr.contains("secret-"), "{output}");
    let sent: std::collections::BTreeSet<String> = server
        .requests()
        .iter()
        .filter_map(|request| request.authorization.clone())
        .collect();
    assert_eq!(
        sent.into_iter().collect::<Vec<_>>(),
        ["Bearer secret-a-4242", "Bearer secret-b-4242"]
    );
}

#[test]
fn an_endpoint_that_recovers_is_probed_and_returns() {
    let sandbox = Sandbox::new();
    // Each replica fails its first three requests, then answers.
    let failing = || {
        let script = Script::new().rule(Rule::any().faults([
            Fault::status(503),
            Fault::status(503),
            Fault::status(503),
        ]));
        FakeServer::start_in_thread(script).expect("start a fake server")
    };
    let (first, second) = (failing(), failing());
    sandbox.suite(
        pool_suite(&[first.base_url(), second.base_url()], "", 1)
            .replace("retries = 3", "retries = 8"),
    );
    let output = sandbox.run(&["--no-score"]).success();
    let host = |server: &FakeServer| server.addr().to_string();
    for server in [&first, &second] {
        assert!(
            output.stderr.contains(&format!(
                "endpoint {} ejected after 3 failures",
                host(server)
            )),
            "{output}"
        );
    }
    // Both out: the one due back first is probed at once, answers, and is back.
    assert!(
        output
            .stderr
            .contains(&format!("endpoint {} answers again", host(&first))),
        "{output}"
    );
    let report = sandbox.report_json(&[]);
    assert_eq!(
        report.result("t0", "m")["attempts"],
        7,
        "3 + 3 failures, then the probe"
    );
    assert_eq!((first.request_count(), second.request_count()), (4, 3));
}
