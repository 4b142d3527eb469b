"""An honest rules baseline: keyword patterns per theme (version "rules-1"), kept for comparison."""

from __future__ import annotations

import re

from classify.base import PostInput, Prediction
from classify.products import tag_products
from core.taxonomy import Taxonomy, load_taxonomy

VERSION = "rules-1"

_RULES: dict[str, list[str]] = {
    "refusal_complaint": [
        r"\b(refus\w*|won'?t (?:help|answer|continue|do|write)|can'?t help with|declin\w+ to)\b.*",
        r"\b(lectur\w+ me|too (?:safe|censored|preachy)|nerf\w*|watered.down|hedg\w+)\b",
        r"\bi can'?t (?:assist|help) with that\b",
    ],
    "perceived_censorship": [
        r"\b(censor(?:ship|ed|ing)?|woke ai|thought control|suppress\w*|hid(?:e|ing) the truth)\b",
        r"\b(allowed to know|ministry of truth|political(?:ly)? bias\w*)\b",
    ],
    "competitor_solicitation": [
        r"\b(bring|take|move) (?:your|ur) \w+ (?:to|over to)\b",
        r"\b(come (?:to|over to)|try us|we won'?t refuse|we'?ll finish it|switch to us)\b",
        r"\b(cancel (?:chatgpt|claude|gemini|grok)\w* and (?:come|use|try))\b",
    ],
    "switching_intent": [
        r"\b(cancel+ed my|unsubscrib\w+|moving (?:everything )?to|switched to|i'?m (?:leaving|done with))\b",
        r"\b(bye,? (?:chatgpt|claude|gemini|grok)|ending my subscription)\b",
    ],
    "lost_work_claim": [
        r"\b(deleted|lost|erased|wiped|vanished|gone)\b.{0,60}\b(work|chats?|history|memory|"
        r"project|hours|conversation|research|essay|code)\b",
        r"\b(my (?:whole|entire) \w+ (?:is|are) gone)\b",
    ],
    "manipulation_accusation": [
        r"\b(gaslight\w*|manipulat\w+|lied to (?:me|us)|they lied|deceiv\w+|betray\w*|lying to)\b",
    ],
    "hateful_framing": [
        r"\b(globalists?|they control|(?:jews|muslims|immigrants) (?:run|control|own))\b",
    ],
    "safety_support": [
        r"\b(good (?:that|call|thing) it refused|rightly refused|alignment (?:work|research) "
        r"(?:is|matters)|glad it (?:said no|refused)|safety (?:matters|first))\b",
    ],
}


class RulesClassifier:
    """Keyword rules per theme; scores are 0.9 for a match and 0.05 otherwise."""

    def __init__(
        self, taxonomy: Taxonomy | None = None, brand_accounts: dict[str, str] | None = None
    ) -> None:
        self.taxonomy = taxonomy or load_taxonomy()
        self.brand_accounts = brand_accounts or {}
        self._compiled = {
            theme: [re.compile(p, re.I) for p in _RULES.get(theme, [])]
            for theme in self.taxonomy.theme_keys
        }

    @property
    def version(self) -> str:
        return f"{VERSION}.t{self.taxonomy.digest[:8]}"

    def predict(self, posts: list[PostInput]) -> list[Prediction]:
        """Label each post by its own text; brand authors add their product."""
        out = []
        for post in posts:
            text = post.text or ""
            themes, scores, evidence = [], {}, {}
            for theme, patterns in self._compiled.items():
                hits = [m.group(0)[:80] for p in patterns if (m := p.search(text))]
                scores[theme] = 0.9 if hits else 0.05
                if hits:
                    themes.append(theme)
                    evidence[theme] = hits[:2]
            products = tag_products(
                text, author_handle=post.author_handle, registry=self.brand_accounts
            )
            out.append(
                Prediction(
                    id=post.id,
                    themes=themes,
                    scores=scores,
                    products=products,
                    model_version=self.version,
                    evidence=evidence,
                )
            )
        return out
