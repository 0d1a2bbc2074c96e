#!/usr/bin/env python3
"""Simulated evaluation of a language model on N questions: what an LLM eval looks like as an Athanor experiment.

Nothing calls a real model: answers come from a seeded random generator with a believable shape, so the demo runs
anywhere, fast, and the same configuration always gives the same numbers.

Configuration (every key optional by hand; Athanor's schema fills the defaults):

    model           "gpt-4" | "claude-3" | "llama-3"          each has its own accuracy ceiling and (made-up) prices
    prompt_variant  "baseline" | "chain-of-thought" | "few-shot"
                    chain-of-thought helps most on reasoning topics but costs many more completion tokens;
                    few-shot helps a little everywhere and costs prompt tokens (the examples)
    questions       how many questions (int)
    temperature     sampling temperature (float, 0-2): adds noise and lowers accuracy a little
    seed            the question set (int): the same seed gives the same questions to every model and variant
    question_ms     wall time spent per question (int, milliseconds)

What it shows:

- per question, a ``debug`` log with metadata (topic, difficulty, tokens, latency), the result ``correct/<i>``
  (1 or 0), the running accuracy as the series ``accuracy/<i>`` (charted on the compare page: run the same seed with
  two models and compare), and progress ``i/N`` with a message;
- now and then a ``warn`` (a simulated rate-limit retry); errors never;
- at the end: ``accuracy``, ``correct``, ``questions``, ``prompt_tokens``, ``completion_tokens``,
  ``tokens_per_question``, ``cost_usd`` and a ``breakdown`` object (by topic, by difficulty, per question);
- cancellation: ``athanor.cancelled()`` is checked before each question and during the wait; on Cancel the demo
  stops at once but still records what it has (cancelling means "stop now", not "throw away");
- a line on standard output at the start and the end, which Athanor keeps as ``info`` logs.

By hand::

    PYTHONPATH=clients/python python3 demos/python/llm_eval.py '{"model": "llama-3", "questions": 10}'
"""

import random
import sys
import time

import athanor

DEFAULTS = {
    "model": "gpt-4",
    "prompt_variant": "baseline",
    "questions": 50,
    "temperature": 0.2,
    "seed": 42,
    "question_ms": 50,
}

# ceiling: accuracy on the easiest question; prices in (made-up) US dollars per million tokens, not any provider's.
MODELS = {
    "gpt-4": {"ceiling": 0.90, "price_in": 30.0, "price_out": 60.0, "verbosity": 1.0, "latency_ms": 900},
    "claude-3": {"ceiling": 0.88, "price_in": 15.0, "price_out": 75.0, "verbosity": 1.15, "latency_ms": 800},
    "llama-3": {"ceiling": 0.76, "price_in": 0.6, "price_out": 0.8, "verbosity": 0.9, "latency_ms": 450},
}

# skill: added everywhere; reasoning: added on reasoning topics; prompt_extra: tokens the variant adds to each
# prompt; completion: range of answer tokens before the model's verbosity.
VARIANTS = {
    "baseline": {"skill": 0.0, "reasoning": 0.0, "prompt_extra": 0, "completion": (12, 45)},
    "chain-of-thought": {"skill": 0.02, "reasoning": 0.10, "prompt_extra": 24, "completion": (160, 420)},
    "few-shot": {"skill": 0.04, "reasoning": 0.01, "prompt_extra": 640, "completion": (14, 50)},
}

TOPICS = {"arithmetic": True, "logic": True, "code": True, "history": False, "science": False, "reading": False}
SYSTEM_PROMPT_TOKENS = 32
MAX_LISTED_QUESTIONS = 2000  # the per-question list in `breakdown` stops here, keeping the result well under 1 MiB


def main():
    cfg = athanor.config(DEFAULTS)
    problem = check(cfg)
    if problem:
        athanor.fail(problem)
        sys.exit(2)

    model, variant = MODELS[cfg["model"]], VARIANTS[cfg["prompt_variant"]]
    total, temperature, pause = int(cfg["questions"]), float(cfg["temperature"]), cfg["question_ms"] / 1000.0
    # Two generators: the questions depend on the seed only, so every model sees the same set; the answers depend
    # on the whole configuration. String seeds are hashed the same way in every Python process.
    questions_rng = random.Random("questions:%d" % cfg["seed"])
    answers_rng = random.Random("answers:%d:%s:%s:%r" % (cfg["seed"], cfg["model"], cfg["prompt_variant"], temperature))

    print("llm_eval: %s with %s prompts on %d questions (seed %d)"
          % (cfg["model"], cfg["prompt_variant"], total, cfg["seed"]), flush=True)
    athanor.info("evaluation started", config=cfg)
    athanor.cancelled()  # arm the SIGTERM handler before the first question

    answered, correct, prompt_tokens, completion_tokens = 0, 0, 0, 0
    per_question = []
    stopped_early = False
    for i in range(1, total + 1):
        if athanor.cancelled():
            stopped_early = True
            break

        topic = questions_rng.choice(sorted(TOPICS))
        difficulty = round(questions_rng.betavariate(2.0, 2.2), 3)
        question_tokens = questions_rng.randint(40, 260)

        chance = model["ceiling"] * (1.0 - 0.55 * difficulty ** 1.5) + variant["skill"]
        if TOPICS[topic]:
            chance += variant["reasoning"]
        chance += answers_rng.gauss(0.0, 0.08 * temperature) - 0.05 * temperature
        chance = min(max(chance, 0.02), 0.99)
        is_correct = answers_rng.random() < chance

        low, high = variant["completion"]
        p_tokens = SYSTEM_PROMPT_TOKENS + variant["prompt_extra"] + question_tokens
        c_tokens = int(answers_rng.randint(low, high) * model["verbosity"] * (1.0 + 0.3 * temperature))
        latency_ms = int(model["latency_ms"] * (0.6 + answers_rng.random()) + c_tokens * 12)

        if answers_rng.random() < 0.03:
            retry_ms = answers_rng.choice([250, 500, 1000, 2000])
            athanor.warn("rate limited (HTTP 429), retrying in %d ms" % retry_ms,
                         question=i, retry_after_ms=retry_ms, attempt=2)
            if wait(pause / 2):
                stopped_early = True
                break

        answered += 1
        correct += is_correct
        prompt_tokens += p_tokens
        completion_tokens += c_tokens
        accuracy = correct / answered
        athanor.debug("q%d %s: %s" % (i, topic, "correct" if is_correct else "wrong"),
                      question=i, topic=topic, difficulty=difficulty, correct=is_correct,
                      prompt_tokens=p_tokens, completion_tokens=c_tokens, latency_ms=latency_ms)
        athanor.result("correct/%d" % i, int(is_correct))
        athanor.series("accuracy", i, round(accuracy, 4))
        athanor.progress(i, total, "%d/%d correct (%.1f%%)" % (correct, answered, 100.0 * accuracy))
        if len(per_question) < MAX_LISTED_QUESTIONS:
            per_question.append({"q": i, "topic": topic, "difficulty": difficulty, "correct": is_correct,
                                 "tokens": p_tokens + c_tokens})
        if wait(pause):
            stopped_early = i < total
            break

    if stopped_early:
        athanor.warn("cancelled after %d of %d questions: recording what there is" % (answered, total))
    summarize(cfg, model, answered, correct, prompt_tokens, completion_tokens, per_question, total, stopped_early)
    print("llm_eval: %d/%d correct" % (correct, answered), flush=True)


def wait(seconds):
    """Sleep, but in short slices so that a Cancel is noticed quickly; True if it was cancelled."""
    deadline = time.monotonic() + seconds
    while True:
        if athanor.cancelled():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, 0.1))


def summarize(cfg, model, answered, correct, prompt_tokens, completion_tokens, per_question, total, stopped_early):
    cost = (prompt_tokens * model["price_in"] + completion_tokens * model["price_out"]) / 1_000_000
    athanor.result("accuracy", round(correct / answered, 4) if answered else None)
    athanor.result("correct", correct)
    athanor.result("questions", answered)
    athanor.result("prompt_tokens", prompt_tokens)
    athanor.result("completion_tokens", completion_tokens)
    athanor.result("tokens_per_question",
                   round((prompt_tokens + completion_tokens) / answered, 1) if answered else None)
    athanor.result("cost_usd", round(cost, 6))
    if stopped_early:
        athanor.result("cancelled", {"answered": answered, "planned": total})

    by_topic, by_difficulty = {}, {}
    for entry in per_question:
        band = "easy" if entry["difficulty"] < 0.33 else "medium" if entry["difficulty"] < 0.66 else "hard"
        for table, name in ((by_topic, entry["topic"]), (by_difficulty, band)):
            row = table.setdefault(name, {"questions": 0, "correct": 0})
            row["questions"] += 1
            row["correct"] += entry["correct"]
    for table in (by_topic, by_difficulty):
        for row in table.values():
            row["accuracy"] = round(row["correct"] / row["questions"], 4)
    breakdown = {"model": cfg["model"], "prompt_variant": cfg["prompt_variant"], "by_topic": by_topic,
                 "by_difficulty": by_difficulty, "per_question": per_question}
    if answered > len(per_question):
        breakdown["per_question_listed"] = len(per_question)
    athanor.result("breakdown", breakdown)
    athanor.info("evaluation finished", answered=answered, correct=correct, cost_usd=round(cost, 6))


def check(cfg):
    """What is wrong with the configuration, or None. Inside Athanor the schema has checked it already; by hand
    anything can come in."""
    if cfg["model"] not in MODELS:
        return "unknown model %r: choose one of %s" % (cfg["model"], ", ".join(MODELS))
    if cfg["prompt_variant"] not in VARIANTS:
        return "unknown prompt_variant %r: choose one of %s" % (cfg["prompt_variant"], ", ".join(VARIANTS))
    for key in ("questions", "seed", "question_ms"):
        value = cfg[key]
        if isinstance(value, float) and value.is_integer():
            cfg[key] = value = int(value)  # 40.0 is 40
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return "%s must be a whole number, 0 or above; got %r" % (key, value)
    if not isinstance(cfg["temperature"], (int, float)) or not 0 <= cfg["temperature"] <= 2:
        return "temperature must be a number from 0 to 2; got %r" % (cfg["temperature"],)
    return None


if __name__ == "__main__":
    main()
