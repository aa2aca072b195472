"""A full batch of real-world-shaped prompts: multi-line, non-ASCII, some far longer than 32,000 characters."""

from __future__ import annotations

import random

from utilities.gen.writers import csv_line

# Lengths a real collection holds: a 32,832-character prompt (a pasted report) and 40,000-character ones.
LONG_LENGTHS = (32_832, 40_000, 40_000, 40_000, 40_000, 40_000)
_PHRASES = (
    "Summarise the findings below for a board meeting.",
    "Übersetze den folgenden Absatz ins Englische – achte auf „Anführungszeichen“.",
    "用三句话解释下面这段话的要点。",
    "اكتب ملخصًا قصيرًا للنص التالي",
    "Explain café vs cafe\u0301 and naïve vs naive, then list three examples 👨\u200d👩\u200d👧.",
    '"Quoted", with commas; semicolons\tand tabs',
    "=SUM(A1:A2) must stay text, as must +1, -1 and @mention",
)


def long_prompt_rows(rows: int = 1000, *, seed: int = 0) -> list[dict[str, str]]:
    """``rows`` rows of ``prompt``, ``category``, ``id``; ``len(LONG_LENGTHS)`` of them, spread out, are long.

    Every prompt differs, most span several lines (LF, CRLF and a lone CR inside the value), and they mix
    scripts, emoji with joiners, combining accents, quotes, delimiters and formula leads.
    """
    rng = random.Random(seed)
    long_at = {(index + 1) * rows // (len(LONG_LENGTHS) + 1): length for index, length in enumerate(LONG_LENGTHS)}
    result = []
    for number in range(1, rows + 1):
        parts = [f"#{number} {rng.choice(_PHRASES)}"]
        parts += [rng.choice(_PHRASES) for _ in range(rng.randrange(0, 4))]
        text = rng.choice(("\n", "\r\n", " ", "\n\n")).join(parts)
        if number in long_at:
            text = _pad(text, long_at[number], rng)
        result.append({"prompt": text, "category": rng.choice(("report", "翻译", "ملخص", "misc")), "id": str(number)})
    return result


def long_prompts_csv(rows: int = 1000, *, seed: int = 0) -> bytes:
    """The rows as a UTF-8 CSV with CRLF record ends, as a spreadsheet exports them."""
    data = long_prompt_rows(rows, seed=seed)
    lines = [csv_line(["prompt", "category", "id"], ",", "\r\n")]
    lines += [csv_line([row["prompt"], row["category"], row["id"]], ",", "\r\n") for row in data]
    return "".join(lines).encode("utf-8")


def _pad(head: str, length: int, rng: random.Random) -> str:
    body = [head, "\n"]
    size = len(head) + 1
    while size < length:
        line = rng.choice(_PHRASES) + rng.choice(("\n", "\r\n", " "))
        body.append(line)
        size += len(line)
    return "".join(body)[:length]
