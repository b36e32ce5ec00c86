//! Chat templates rendered byte for byte as transformers renders them: the fixture models'
//! verbatim templates against their golden prompts, and the Jinja features transformers adds
//! (`raise_exception`, `{% generation %}`, its `tojson`, loop controls) against the output of
//! Jinja2 3.1.6 set up the way transformers' `_compile_jinja_template` sets it up.

mod common;

use serde_json::{json, Value};
use versus_core::message::{ContentPart, Message, Role};
use versus_engine::template::ChatTemplate;
use versus_engine::tokenizer::Tokenizer;

use common::fixtures_dir;

const MODELS: [&str; 4] = [
    "tiny-phi4",
    "tiny-phi35-longrope",
    "tiny-llama32",
    "tiny-qwen25",
];

fn golden(model: &str) -> Value {
    let path = fixtures_dir().join(model).join("golden.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn model_template(model: &str) -> (Tokenizer, ChatTemplate) {
    let tokenizer = Tokenizer::from_folder(&fixtures_dir().join(model))
        .unwrap_or_else(|e| panic!("{model}: {e}"));
    let template = ChatTemplate::from_tokenizer(&tokenizer, model)
        .unwrap_or_else(|e| panic!("{model}: {e}"))
        .unwrap_or_else(|| panic!("{model} has no chat template"));
    (tokenizer, template)
}

fn messages(value: &Value) -> Vec<Message> {
    value
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().expect("role") {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => panic!("unexpected role {other}"),
            };
            Message::text(role, m["content"].as_str().expect("content"))
        })
        .collect()
}

fn no_kwargs() -> serde_json::Map<String, Value> {
    serde_json::Map::new()
}

#[test]
fn golden_prompts_render_byte_for_byte() {
    let mut rendered = 0;
    for model in MODELS {
        let golden = golden(model);
        let (tokenizer, template) = model_template(model);
        let kwargs = golden["reference"]["chat_template_kwargs"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for conversation in golden["conversations"].as_array().expect("conversations") {
            let id = conversation["id"].as_str().expect("id");
            let prompt = template
                .render(&messages(&conversation["messages"]), true, &kwargs)
                .unwrap_or_else(|e| panic!("{model}/{id}: {e}"));
            let want = conversation["prompt"].as_str().expect("prompt");
            assert_eq!(prompt, want, "{model}/{id}");
            // And the rendered prompt tokenizes to the golden ids (no special tokens added).
            let ids: Vec<u64> = tokenizer
                .encode(&prompt, false)
                .expect("encode")
                .into_iter()
                .map(u64::from)
                .collect();
            let want_ids: Vec<u64> = conversation["input_ids"]
                .as_array()
                .expect("input_ids")
                .iter()
                .map(|id| id.as_u64().expect("id"))
                .collect();
            assert_eq!(ids, want_ids, "{model}/{id} input_ids");
            rendered += 1;
        }
    }
    assert_eq!(rendered, 12);
}

#[test]
fn phi35_drops_an_empty_system_message() {
    let (_, template) = model_template("tiny-phi35-longrope");
    let with_empty_system = template
        .render(
            &[Message::system(""), Message::user("Hi")],
            true,
            &no_kwargs(),
        )
        .expect("render");
    assert_eq!(with_empty_system, "<|user|>\nHi<|end|>\n<|assistant|>\n");
}

#[test]
fn phi35_without_generation_prompt_appends_eos() {
    let (_, template) = model_template("tiny-phi35-longrope");
    let prompt = template
        .render(
            &[Message::user("Hi"), Message::assistant("Hello")],
            false,
            &no_kwargs(),
        )
        .expect("render");
    assert_eq!(
        prompt,
        "<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|endoftext|>"
    );
}

#[test]
fn qwen_inserts_its_default_system_prompt() {
    let (_, template) = model_template("tiny-qwen25");
    let prompt = template
        .render(&[Message::user("Hi")], true, &no_kwargs())
        .expect("render");
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn llama_date_comes_from_kwargs_or_today() {
    let (_, template) = model_template("tiny-llama32");
    let mut kwargs = no_kwargs();
    kwargs.insert("date_string".into(), json!("01 Jan 2030"));
    let prompt = template
        .render(&[Message::user("Hi")], true, &kwargs)
        .expect("render");
    assert!(prompt.contains("Today Date: 01 Jan 2030\n"), "{prompt}");
    // Without date_string the template calls strftime_now("%d %b %Y").
    let prompt = template
        .render(&[Message::user("Hi")], true, &no_kwargs())
        .expect("render");
    let today = chrono::Local::now().format("%d %b %Y").to_string();
    let yesterday = (chrono::Local::now() - chrono::Duration::minutes(1))
        .format("%d %b %Y")
        .to_string();
    assert!(
        prompt.contains(&format!("Today Date: {today}\n"))
            || prompt.contains(&format!("Today Date: {yesterday}\n")),
        "{prompt}"
    );
}

#[test]
fn raise_exception_names_the_model_and_the_message() {
    // Gemma's way of refusing a system role.
    let source = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}\
                  {{ raise_exception('System role not supported') }}{% endif %}\
                  {% for message in messages %}{{ message['content'] }}{% endfor %}";
    let template = ChatTemplate::new(source, "tiny-gemma", Some("<bos>"), None).expect("compile");
    let error = template
        .render(
            &[Message::system("Be brief."), Message::user("Hi")],
            true,
            &no_kwargs(),
        )
        .expect_err("a system message is refused");
    assert_eq!(
        error.to_string(),
        "chat template of tiny-gemma: System role not supported"
    );
    assert_eq!(
        template
            .render(&[Message::user("Hi")], true, &no_kwargs())
            .expect("render"),
        "<bos>Hi"
    );
}

#[test]
fn syntax_errors_name_the_model() {
    let error = ChatTemplate::new("{% for m in messages %}", "broken-model", None, None)
        .expect_err("unclosed for");
    let message = error.to_string();
    assert!(
        message.starts_with("chat template of broken-model: "),
        "{message}"
    );
}

#[test]
fn a_runaway_template_stops_with_an_error_naming_its_file() {
    // Nested loops of 10^10 steps hung `versus chat`; fuel stops them and names the file.
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = fixtures_dir().join("tiny-llama32");
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture.join(file), dir.path().join(file)).expect("copy");
    }
    let runaway =
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    std::fs::write(dir.path().join("chat_template.jinja"), runaway).expect("write");
    let tokenizer = Tokenizer::from_folder(dir.path()).expect("tokenizer");
    let template = ChatTemplate::from_tokenizer(&tokenizer, "runaway")
        .expect("compiles")
        .expect("has a template");
    let started = std::time::Instant::now();
    let error = template
        .render(&[Message::user("Hi")], true, &no_kwargs())
        .expect_err("runs out of fuel");
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    let message = error.to_string();
    assert!(message.contains("steps"), "{message}");
    assert!(message.contains("chat_template.jinja"), "{message}");
}

#[test]
fn images_are_refused() {
    let (_, template) = model_template("tiny-phi4");
    let message = Message {
        role: Role::User,
        content: vec![
            ContentPart::Text {
                text: "What is this?".into(),
            },
            ContentPart::Image {
                url: "data:image/png;base64,AA==".into(),
                source: None,
            },
        ],
    };
    let error = template
        .render(&[message], true, &no_kwargs())
        .expect_err("text only");
    assert!(
        error
            .to_string()
            .contains("model tiny-phi4 reads text only"),
        "{error}"
    );
}

fn conversation() -> Vec<Message> {
    vec![
        Message::system("  Be brief.  "),
        Message::user("Hello, World"),
        Message::assistant("Hi!"),
    ]
}

fn render(source: &str, extra: Value) -> String {
    let template = ChatTemplate::new(source, "test-model", None, None).expect("compile");
    template
        .render(&conversation(), false, extra.as_object().expect("object"))
        .expect("render")
}

#[test]
fn generation_tags_render_their_body() {
    let source = "{% for m in messages %}\n{% if m.role == 'assistant' %}\n{%- generation %}\n\
                  <A>{{ m.content }}</A>\n{% endgeneration %}\n{% else %}\n\
                  <{{ m.role }}>{{ m.content }}\n{% endif %}\n{% endfor %}\n";
    assert_eq!(
        render(source, json!({})),
        "<system>  Be brief.  \n<user>Hello, World\n<A>Hi!</A>\n"
    );
}

#[test]
fn python_string_and_dict_methods_work() {
    let source = "{% for m in messages %}{{ m.content.strip() }}|{{ m.content.startswith('Hello') }}|\
                  {{ m.role.upper() }}|{{ m.content.split(',') | join('+') }}|\
                  {{ m.content.replace('l', 'L') }}|{{ m.content.lower().endswith('!') }}\n\
                  {% endfor %}{% for k, v in {'b': 1, 'a': 'x'}.items() %}{{ k }}={{ v }};{% endfor %}";
    assert_eq!(
        render(source, json!({})),
        "Be brief.|False|SYSTEM|  Be brief.  |  Be brief.  |False\n\
         Hello, World|True|USER|Hello+ World|HeLLo, WorLd|False\n\
         Hi!|False|ASSISTANT|Hi!|Hi!|True\nb=1;a=x;"
    );
}

fn nested_value() -> Value {
    json!({
        "ctrl": "\u{1}\u{7f}",
        "emoji": "🦀",
        "html": "<a href='x'>&</a>",
        "list": [1, 2.5, true, null, [], {}],
        "name": "météo",
        "nested": {"a": [1e-05, 1e16, 100.0], "z": 0.1},
        "quote": "say \"hi\"\n\ttab"
    })
}

#[test]
fn tojson_matches_python_json_dumps() {
    let extra = json!({ "x": nested_value() });
    assert_eq!(
        render("{{ x | tojson }}", extra.clone()),
        "{\"ctrl\": \"\\u0001\u{7f}\", \"emoji\": \"🦀\", \"html\": \"<a href='x'>&</a>\", \
         \"list\": [1, 2.5, true, null, [], {}], \"name\": \"météo\", \
         \"nested\": {\"a\": [1e-05, 1e+16, 100.0], \"z\": 0.1}, \
         \"quote\": \"say \\\"hi\\\"\\n\\ttab\"}"
    );
    assert_eq!(
        render("{{ x | tojson(indent=2) }}", extra.clone()),
        "{\n  \"ctrl\": \"\\u0001\u{7f}\",\n  \"emoji\": \"🦀\",\n  \"html\": \"<a href='x'>&</a>\",\n  \
         \"list\": [\n    1,\n    2.5,\n    true,\n    null,\n    [],\n    {}\n  ],\n  \
         \"name\": \"météo\",\n  \"nested\": {\n    \"a\": [\n      1e-05,\n      1e+16,\n      100.0\n    ],\n    \
         \"z\": 0.1\n  },\n  \"quote\": \"say \\\"hi\\\"\\n\\ttab\"\n}"
    );
    assert_eq!(
        render("{{ x | tojson(ensure_ascii=True, sort_keys=True) }}", extra.clone()),
        "{\"ctrl\": \"\\u0001\\u007f\", \"emoji\": \"\\ud83e\\udd80\", \"html\": \"<a href='x'>&</a>\", \
         \"list\": [1, 2.5, true, null, [], {}], \"name\": \"m\\u00e9t\\u00e9o\", \
         \"nested\": {\"a\": [1e-05, 1e+16, 100.0], \"z\": 0.1}, \
         \"quote\": \"say \\\"hi\\\"\\n\\ttab\"}"
    );
    assert_eq!(
        render("{{ x | tojson(separators=(',', ':')) }}", extra),
        "{\"ctrl\":\"\\u0001\u{7f}\",\"emoji\":\"🦀\",\"html\":\"<a href='x'>&</a>\",\
         \"list\":[1,2.5,true,null,[],{}],\"name\":\"météo\",\
         \"nested\":{\"a\":[1e-05,1e+16,100.0],\"z\":0.1},\
         \"quote\":\"say \\\"hi\\\"\\n\\ttab\"}"
    );
    // Mappings written in the template keep their order, like Python dicts.
    assert_eq!(
        render(
            "{{ {'b': 1, 'a': ['x', {'d': none, 'c': true}]} | tojson }}",
            json!({})
        ),
        "{\"b\": 1, \"a\": [\"x\", {\"d\": null, \"c\": true}]}"
    );
}

#[test]
fn values_print_like_python() {
    assert_eq!(
        render(
            "{{ none }}|{{ true }}|{{ false }}|{{ 1.5 }}|{{ 2 }}|{{ undefined_name }}|{{ 1e20 }}",
            json!({})
        ),
        "None|True|False|1.5|2||1e+20"
    );
}

#[test]
fn loop_controls_namespace_and_trailing_newline() {
    assert_eq!(
        render(
            "{% for m in messages %}{% if loop.index0 == 2 %}{% break %}{% endif %}\
             {% if m.role == 'system' %}{% continue %}{% endif %}{{ m.role }};{% endfor %}",
            json!({})
        ),
        "user;"
    );
    assert_eq!(
        render(
            "{% set ns = namespace(found=false) %}{% for m in messages %}\
             {% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
            json!({})
        ),
        "True"
    );
    assert_eq!(render("{{ 'x' }}\n", json!({})), "x");
}

#[test]
fn kwargs_override_special_tokens_but_not_messages() {
    let template = ChatTemplate::new(
        "{{ bos_token }}|{{ eos_token }}",
        "m",
        Some("<s>"),
        Some("</s>"),
    )
    .expect("compile");
    let mut kwargs = no_kwargs();
    kwargs.insert("bos_token".into(), json!("<B>"));
    assert_eq!(
        template.render(&[], true, &kwargs).expect("render"),
        "<B>|</s>"
    );
    kwargs.insert("messages".into(), json!([]));
    let error = template.render(&[], true, &kwargs).expect_err("reserved");
    assert!(error.to_string().contains("`messages`"), "{error}");
}
