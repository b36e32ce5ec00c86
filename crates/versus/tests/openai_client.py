#!/usr/bin/env python3
"""Checks `versus serve` with the official `openai` Python package: chat, streaming, usage, seeds,
and errors (401, 404, 400), as any OpenAI client would see them.

    python3 crates/versus/tests/openai_client.py BASE_URL [--model ID] [--key KEY]

BASE_URL is the API root (`http://127.0.0.1:PORT/v1`); the key defaults to $OPENAI_API_KEY and the
model to `tiny`. The server must require the key (`--api-key-env`), so that 401 can be checked.
Exits 0 when everything matches, and non-zero naming the first mismatch otherwise. Run by
crates/versus/tests/serve.rs against the real binary.
"""

import argparse
import os
import sys

try:
    import openai
except ImportError:
    sys.exit(
        "the `openai` package is not installed: python3 -m pip install 'openai==3.57.0'"
    )


class Mismatch(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Mismatch(what)


def expect_error(kind, status, call, what):
    """`call` must raise openai's `kind` with HTTP `status` and an OpenAI-shaped body."""
    try:
        call()
    except kind as error:
        check(error.status_code == status, f"{what}: status {error.status_code}, expected {status}")
        body = error.body
        check(isinstance(body, dict), f"{what}: error body is {body!r}, expected an object")
        check(
            {"message", "type", "param", "code"} <= set(body),
            f"{what}: error body {body!r} lacks message/type/param/code",
        )
        check(isinstance(body["message"], str) and body["message"], f"{what}: empty message")
        return error
    except openai.APIError as error:
        raise Mismatch(f"{what}: raised {type(error).__name__}, expected {kind.__name__}: {error}")
    raise Mismatch(f"{what}: no error, expected {kind.__name__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--key", default=os.environ.get("OPENAI_API_KEY"))
    args = parser.parse_args()
    if not args.key:
        sys.exit("no key: pass --key or set OPENAI_API_KEY")

    # No retries: every status must be the server's first answer.
    client = openai.OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=120)
    model = args.model
    messages = [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]

    models = client.models.list()
    ids = [m.id for m in models.data]
    check(model in ids, f"models.list() gives {ids}, without {model}")
    check(client.models.retrieve(model).id == model, "models.retrieve() names another model")

    # A whole answer.
    whole = client.chat.completions.create(
        model=model, messages=messages, temperature=0, max_tokens=8
    )
    check(whole.object == "chat.completion", f"object is {whole.object!r}")
    check(whole.id.startswith("chatcmpl-"), f"id is {whole.id!r}")
    check(whole.model == model, f"model is {whole.model!r}")
    check(isinstance(whole.created, int), "created is not an integer")
    check(len(whole.choices) == 1, f"{len(whole.choices)} choices")
    choice = whole.choices[0]
    check(choice.index == 0, "choice index is not 0")
    check(choice.message.role == "assistant", f"role is {choice.message.role!r}")
    check(isinstance(choice.message.content, str), "content is not text")
    check(choice.finish_reason == "length", f"finish_reason is {choice.finish_reason!r}")
    usage = whole.usage
    check(usage is not None, "no usage")
    check(usage.completion_tokens == 8, f"completion_tokens is {usage.completion_tokens}, max_tokens 8")
    check(usage.prompt_tokens > 0, "prompt_tokens is 0")
    check(
        usage.total_tokens == usage.prompt_tokens + usage.completion_tokens,
        "total_tokens is not the sum",
    )

    # The newer limit, and content given as parts.
    newer = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are brief."},
            {"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]},
        ],
        temperature=0,
        max_completion_tokens=5,
    )
    check(newer.usage.completion_tokens == 5, "max_completion_tokens is not honoured")
    check(
        whole.choices[0].message.content.startswith(newer.choices[0].message.content),
        "text parts and a plain string give different prompts",
    )

    # The same request streamed gives the same text, then the finish reason, usage and the end.
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        temperature=0,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish_reasons, usages, roles = [], [], [], []
    for chunk in stream:
        check(chunk.object == "chat.completion.chunk", f"chunk object is {chunk.object!r}")
        check(chunk.model == model, f"chunk model is {chunk.model!r}")
        if chunk.usage is not None:
            usages.append(chunk.usage)
            check(chunk.choices == [], "the usage chunk has choices")
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish_reasons.append(c.finish_reason)
    check(roles == ["assistant"], f"roles in the stream: {roles}")
    check(
        "".join(pieces) == whole.choices[0].message.content,
        f"streamed {''.join(pieces)!r}, whole {whole.choices[0].message.content!r}",
    )
    check(finish_reasons == ["length"], f"finish reasons in the stream: {finish_reasons}")
    check(len(usages) == 1, f"{len(usages)} usage chunks")
    check(usages[0].completion_tokens == 8, "streamed usage differs")
    check(usages[0].prompt_tokens == usage.prompt_tokens, "streamed prompt_tokens differ")

    # Sampling with a seed repeats; a stop string ends the answer.
    def sampled():
        return client.chat.completions.create(
            model=model, messages=messages, temperature=0.9, top_p=0.95, seed=7, max_tokens=12
        ).choices[0].message.content

    check(sampled() == sampled(), "the same seed gave different answers")
    text = whole.choices[0].message.content
    stop_at = text.strip()[:2]
    if stop_at:
        stopped = client.chat.completions.create(
            model=model, messages=messages, temperature=0, max_tokens=8, stop=[stop_at]
        )
        check(stop_at not in stopped.choices[0].message.content, "the stop string was sent")
        check(stopped.choices[0].finish_reason == "stop", "a stop string is not finish_reason stop")

    # Errors, each with its status and OpenAI's exception.
    wrong_key = openai.OpenAI(base_url=args.base_url, api_key="sk-wrong", max_retries=0)
    expect_error(
        openai.AuthenticationError,
        401,
        lambda: wrong_key.chat.completions.create(model=model, messages=messages),
        "a wrong key",
    )
    expect_error(openai.AuthenticationError, 401, lambda: wrong_key.models.list(), "a wrong key on models")
    missing = expect_error(
        openai.NotFoundError,
        404,
        lambda: client.chat.completions.create(model="gpt-4o", messages=messages),
        "an unknown model",
    )
    check(missing.code == "model_not_found", f"unknown model code is {missing.code!r}")
    expect_error(
        openai.BadRequestError,
        400,
        lambda: client.chat.completions.create(model=model, messages=messages, n=2),
        "n = 2",
    )
    expect_error(
        openai.BadRequestError,
        400,
        lambda: client.chat.completions.create(model=model, messages=[]),
        "no messages",
    )
    bad_type = expect_error(
        openai.BadRequestError,
        400,
        lambda: client.chat.completions.create(model=model, messages=messages, temperature="hot"),
        "a temperature that is not a number",
    )
    check(bad_type.param == "temperature", f"param is {bad_type.param!r}")
    expect_error(
        openai.BadRequestError,
        400,
        lambda: client.post("/chat/completions", body={"model": model}, cast_to=object),
        "a body without messages",
    )

    print(f"openai {openai.__version__}: chat, stream, usage, seed, stop and errors match")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as mismatch:
        sys.exit(f"mismatch: {mismatch}")
    except openai.APIError as error:
        sys.exit(f"unexpected error from the server: {type(error).__name__}: {error}")
