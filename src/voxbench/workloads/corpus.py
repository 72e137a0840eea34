"""The built-in text corpus: English short (~1 s of speech), medium (~5 s) and long (~20 s) inputs,
and a Japanese one (``japanese``) for engines that speak only Japanese.

Sentences are plain prose with numbers and punctuation kept simple, so that every engine reads them
the same way; durations were sized for a speaking rate of about 150 words per minute.
"""

from __future__ import annotations

CORPUS: dict[str, dict[str, str]] = {
    "short": {
        "short-1": "Good morning, everyone.",
        "short-2": "Turn left at the bridge.",
    },
    "medium": {
        "medium-1": "The library opens at nine, and the reading room stays quiet until the "
        "afternoon classes begin.",
        "medium-2": "Please remember to bring a warm coat, because the evening wind near the "
        "harbour can be surprisingly cold.",
    },
    "long": {
        "long-1": "Every spring, the small town by the river holds a market where farmers sell "
        "honey, cheese and fresh bread. Children run between the stalls while musicians play "
        "on the old stone steps. By the evening, the square is full of lanterns, and people "
        "stay late to talk with friends they have not seen since the winter.",
        "long-2": "Our train leaves the central station at half past eight and reaches the "
        "coast a little before noon. The journey follows the valley, crosses two long bridges "
        "and passes through a tunnel under the hills. If the weather is clear, you can see the "
        "sea from the right-hand windows for the last twenty minutes of the trip.",
    },
    # For Japanese-only engines (kokoro): kana and common kanji, one and two sentences.
    "japanese": {
        "japanese-1": "こんにちは。今日の説明を始めます。",
        "japanese-2": "図書館は朝九時に開きます。午後の授業が始まるまで、閲覧室は静かです。",
    },
}

DESCRIPTIONS = {
    "short": "built-in English sentences, about 1 s of speech each",
    "medium": "built-in English sentences, about 5 s of speech each",
    "long": "built-in English paragraphs, about 20 s of speech each",
    "japanese": "built-in Japanese sentences (for kokoro), about 3-6 s of speech each",
}
