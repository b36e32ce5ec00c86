#!/usr/bin/env python3
"""Checks versus-testkit's fake servers with the providers' official Python clients, so that the
fakes cannot drift from the real wire formats: `openai` (chat completions, the Responses API,
Azure OpenAI classic and v1), `anthropic` (Messages) and `google-genai` (Gemini) stream from the
fake and parse every event, read whole answers, thinking, usage, blocks, errors inside streams,
retries on 429/529 with retry-after, and 401s.

    python3 official_clients.py ROOT_URL KEY

ROOT_URL is the fake's root (`http://127.0.0.1:PORT`); the fake must require KEY and follow the
script in crates/versus-testkit/tests/official_clients.rs (models `plain`, `thinker`,
`rate-limited`, `overloaded`, `blocked`, `broken`, `no-images`). Exits 0 when every check
passes, and non-zero naming the first mismatch otherwise.
"""

import sys

try:
    import anthropic
    import openai
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types
except ImportError as error:
    sys.exit(
        f"an official client is missing ({error}): python3 -m pip install "
        "'openai==3.57.0' 'anthropic==2.10.0' 'google-genai==3.3.0'"
    )

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
THINKING = "First I weigh the options."


class Mismatch(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Mismatch(what)


def expect_error(kind, call, what):
    try:
        call()
    except kind as error:
        return error
    except Exception as error:  # noqa: BLE001 - the point is to name what was raised
        raise Mismatch(f"{what}: raised {type(error).__name__}: {error}, expected {kind.__name__}")
    raise Mismatch(f"{what}: no error, expected {kind.__name__}")


def answer_for(model, prompt):
    return f"Answer from {model}: {prompt}"


# ---- OpenAI: chat completions and the Responses API.

def check_openai(root, key):
    client = openai.OpenAI(base_url=f"{root}/v1", api_key=key, max_retries=2, timeout=30)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]
    chunks = list(client.chat.completions.create(
        model="plain", messages=messages, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text == answer_for("plain", "hello there"), f"chat stream text {text!r}")
    check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5, "chat usage chunk")

    # The Responses API: every event parses into its typed model, the helper accumulates them.
    events = list(client.responses.create(
        model="thinker", instructions="Be brief.", input="hello there", stream=True,
        reasoning={"effort": "low", "summary": "auto"}))
    names = [event.type for event in events]
    check(names[0] == "response.created" and names[-1] == "response.completed", f"event order {names}")
    for event in events:
        check(type(event).__module__.startswith("openai.types.responses"),
              f"event {event.type} parsed as {type(event)}")
    check([e.sequence_number for e in events] == list(range(len(events))), "sequence numbers")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    check(deltas == answer_for("thinker", "hello there"), f"responses deltas {deltas!r}")
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    check(summary == THINKING, f"reasoning summary {summary!r}")
    final = events[-1].response
    check(final.output_text == answer_for("thinker", "hello there"), f"output_text {final.output_text!r}")
    check(final.usage.output_tokens_details.reasoning_tokens == 5, "reasoning tokens")
    with client.responses.stream(model="plain", input="again") as stream:
        for _ in stream:
            pass
        check(stream.get_final_response().output_text == answer_for("plain", "again"), "stream helper")
    whole = client.responses.create(model="plain", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}"}]}])
    check(whole.output_text == answer_for("plain", "look"), "whole response")
    check(whole.usage.input_tokens == 1, f"input tokens {whole.usage.input_tokens}")

    # A Responses error event and a blocked answer arrive as typed events.
    broken = list(client.responses.create(model="broken", input="hi", stream=True))
    check(broken[-1].type == "error" and broken[-1].code == "server_error", f"error event {broken[-1]}")
    blocked = list(client.responses.create(model="blocked", input="hi", stream=True))
    check(blocked[-1].type == "response.incomplete"
          and blocked[-1].response.incomplete_details.reason == "content_filter", "blocked response")

    # 429 with retry-after is retried by the client itself; a wrong key is a 401.
    retried = client.chat.completions.create(model="rate-limited", messages=messages)
    check(retried.choices[0].message.content == answer_for("rate-limited", "hello there"), "429 retried")
    wrong = openai.OpenAI(base_url=f"{root}/v1", api_key="wrong", max_retries=0)
    expect_error(openai.AuthenticationError,
                 lambda: wrong.responses.create(model="plain", input="hi"), "responses 401")
    refused = expect_error(openai.BadRequestError, lambda: client.responses.create(
        model="no-images", input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}"}]}]), "image refused")
    check("image" in str(refused), f"refusal names images: {refused}")


def check_azure(root, key):
    classic = openai.AzureOpenAI(azure_endpoint=root, api_version="2024-10-21", api_key=key,
                                 max_retries=0)
    chunks = list(classic.chat.completions.create(
        model="plain", messages=[{"role": "user", "content": "hi azure"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text == answer_for("plain", "hi azure"), f"azure classic text {text!r}")
    v1 = openai.OpenAI(base_url=f"{root}/openai/v1/", api_key=key, max_retries=0)
    whole = v1.chat.completions.create(model="plain", messages=[{"role": "user", "content": "v1"}])
    check(whole.choices[0].message.content == answer_for("plain", "v1"), "azure v1 chat")
    response = v1.responses.create(model="plain", input="v1 responses")
    check(response.output_text == answer_for("plain", "v1 responses"), "azure v1 responses")


# ---- Anthropic.

ANTHROPIC_EVENTS = {"message_start", "content_block_start", "content_block_delta",
                    "content_block_stop", "message_delta", "message_stop"}


def check_anthropic(root, key):
    client = anthropic.Anthropic(base_url=root, api_key=key, max_retries=2, timeout=30)
    events = list(client.messages.create(
        model="thinker", max_tokens=2048, system="Be brief.", stream=True,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hello there"}]))
    for event in events:
        check(event.type in ANTHROPIC_EVENTS, f"unexpected event {event.type}")
        check(type(event).__module__.startswith("anthropic.types"), f"{event.type} parsed as {type(event)}")
    with client.messages.stream(
            model="thinker", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "hello there"}]) as stream:
        message = stream.get_final_message()
    kinds = [block.type for block in message.content]
    check(kinds == ["thinking", "text"], f"content blocks {kinds}")
    check(message.content[0].thinking == THINKING, f"thinking {message.content[0].thinking!r}")
    check(message.content[1].text == answer_for("thinker", "hello there"), "text block")
    check(message.stop_reason == "end_turn", f"stop reason {message.stop_reason}")
    check(message.usage.input_tokens == 2 and message.usage.output_tokens == 10,
          f"usage {message.usage}")
    check(message.usage.output_tokens_details.thinking_tokens == 5, "thinking tokens")

    whole = client.messages.create(model="plain", max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}]}])
    check(whole.content[0].text == answer_for("plain", "look"), "whole message with an image")

    # 529 and 429 with retry-after are retried by the client; an error event mid-stream raises.
    overloaded = client.messages.create(model="overloaded", max_tokens=50,
                                        messages=[{"role": "user", "content": "busy"}])
    check(overloaded.content[0].text == answer_for("overloaded", "busy"), "529 retried")
    limited = client.messages.create(model="rate-limited", max_tokens=50,
                                     messages=[{"role": "user", "content": "busy"}])
    check(limited.content[0].text == answer_for("rate-limited", "busy"), "429 retried")
    error = expect_error(anthropic.APIStatusError, lambda: list(client.messages.create(
        model="broken", max_tokens=50, stream=True, messages=[{"role": "user", "content": "hi"}])),
        "error event")
    check("overloaded" in str(error).lower(), f"error event names overload: {error}")
    blocked = client.messages.create(model="blocked", max_tokens=50,
                                     messages=[{"role": "user", "content": "risky"}])
    check(blocked.stop_reason == "refusal", f"refusal stop reason {blocked.stop_reason}")
    wrong = anthropic.Anthropic(base_url=root, api_key="wrong", max_retries=0)
    expect_error(anthropic.AuthenticationError, lambda: wrong.messages.create(
        model="plain", max_tokens=5, messages=[{"role": "user", "content": "hi"}]), "anthropic 401")
    expect_error(anthropic.BadRequestError, lambda: client.messages.create(
        model="no-images", max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}]}]),
        "image refused")


# ---- Gemini.

def check_gemini(root, key):
    client = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=root))
    config = genai_types.GenerateContentConfig(
        system_instruction="Be brief.", temperature=0, max_output_tokens=100, seed=3,
        thinking_config=genai_types.ThinkingConfig(thinking_budget=512, include_thoughts=True))
    chunks = list(client.models.generate_content_stream(
        model="thinker", contents="hello there", config=config))
    text = "".join(part.text for chunk in chunks for part in (chunk.candidates[0].content.parts or [])
                   if part.text and not part.thought)
    thoughts = "".join(part.text for chunk in chunks for part in (chunk.candidates[0].content.parts or [])
                       if part.text and part.thought)
    check(text == answer_for("thinker", "hello there"), f"gemini text {text!r}")
    check(thoughts == THINKING, f"gemini thoughts {thoughts!r}")
    last = chunks[-1]
    check(last.candidates[0].finish_reason == genai_types.FinishReason.STOP, "finish reason STOP")
    check(last.usage_metadata.prompt_token_count == 4, f"prompt tokens {last.usage_metadata}")
    check(last.usage_metadata.thoughts_token_count == 5, "thoughts tokens")

    whole = client.models.generate_content(model="plain", contents=[genai_types.Content(
        role="user", parts=[genai_types.Part(text="look"),
                            genai_types.Part.from_bytes(data=__import__("base64").b64decode(PIXEL),
                                                        mime_type="image/png")])])
    check(whole.text == answer_for("plain", "look"), f"whole gemini answer {whole.text!r}")

    blocked = client.models.generate_content(model="blocked", contents="risky")
    check(blocked.candidates[0].finish_reason == genai_types.FinishReason.SAFETY, "SAFETY block")
    check(any(r.category == genai_types.HarmCategory.HARM_CATEGORY_HARASSMENT
              for r in blocked.candidates[0].safety_ratings), "safety ratings")
    expect_error(genai_errors.ServerError, lambda: list(client.models.generate_content_stream(
        model="broken", contents="hi")), "error mid-stream")
    wrong = genai.Client(api_key="wrong", http_options=genai_types.HttpOptions(base_url=root))
    error = expect_error(genai_errors.ClientError,
                         lambda: wrong.models.generate_content(model="plain", contents="hi"), "bad key")
    check("API_KEY_INVALID" in str(error), f"bad key reason: {error}")
    expect_error(genai_errors.ClientError, lambda: client.models.generate_content(
        model="no-images", contents=[genai_types.Part.from_bytes(
            data=__import__("base64").b64decode(PIXEL), mime_type="image/png")]), "image refused")


# ---- Batch APIs.

def check_batches(root, key):
    import io
    import json
    openai_client = openai.OpenAI(base_url=f"{root}/v1", api_key=key, max_retries=0)
    line = {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "plain", "messages": [{"role": "user", "content": "batched"}]}}
    uploaded = openai_client.files.create(
        file=("batch.jsonl", io.BytesIO((json.dumps(line) + "\n").encode())), purpose="batch")
    batch = openai_client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                         completion_window="24h")
    check(batch.status == "in_progress", f"openai batch status {batch.status}")
    batch = openai_client.batches.retrieve(batch.id)
    check(batch.status == "completed" and batch.request_counts.completed == 1, f"openai batch {batch}")
    output = openai_client.files.content(batch.output_file_id).text.strip().splitlines()
    result = json.loads(output[0])
    check(result["response"]["body"]["choices"][0]["message"]["content"] == answer_for("plain", "batched"),
          "openai batch result")

    anthropic_client = anthropic.Anthropic(base_url=root, api_key=key, max_retries=0)
    created = anthropic_client.messages.batches.create(requests=[{
        "custom_id": "c1", "params": {"model": "plain", "max_tokens": 20,
                                      "messages": [{"role": "user", "content": "batched"}]}}])
    check(created.processing_status == "in_progress", "anthropic batch in progress")
    ended = anthropic_client.messages.batches.retrieve(created.id)
    check(ended.processing_status == "ended" and ended.request_counts.succeeded == 1, f"{ended}")
    results = list(anthropic_client.messages.batches.results(created.id))
    check(results[0].custom_id == "c1" and results[0].result.type == "succeeded", f"{results}")
    check(results[0].result.message.content[0].text == answer_for("plain", "batched"), "anthropic result")

    gemini_client = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=root))
    job = gemini_client.batches.create(model="plain", src=[{
        "contents": [{"role": "user", "parts": [{"text": "batched"}]}], "metadata": {"key": "c1"}}])
    check(job.name.startswith("batches/"), f"gemini batch name {job.name}")
    job = gemini_client.batches.get(name=job.name)
    check(job.state == genai_types.JobState.JOB_STATE_SUCCEEDED, f"gemini batch state {job.state}")
    inlined = job.dest.inlined_responses[0]
    check(inlined.response.text == answer_for("plain", "batched"), "gemini batch result")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, key = sys.argv[1].rstrip("/"), sys.argv[2]
    for name, run in [("openai", check_openai), ("azure", check_azure),
                      ("anthropic", check_anthropic), ("gemini", check_gemini),
                      ("batches", check_batches)]:
        try:
            run(root, key)
        except Mismatch as mismatch:
            sys.exit(f"{name}: {mismatch}")
        print(f"{name}: ok")


if __name__ == "__main__":
    main()
