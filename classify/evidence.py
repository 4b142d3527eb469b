"""Why a label: cue phrases from the codebook found in a post, and the product a theme is about."""

from __future__ import annotations

import re

_I = re.IGNORECASE

# Cue words per theme, from the codebook's include column; they explain a label, never make one.
CUES: dict[str, re.Pattern[str]] = {
    "refusal_complaint": re.compile(
        r"\b(refus\w*|declin\w*|won['’]?t (?:help|do|answer|continue|let)|wouldn['’]?t|"
        r"can['’]?t help|cannot help|unable to|lectur\w*|moraliz\w*|preach\w*|hedg\w*|"
        r"watered[- ]down|nanny|as an ai|against (?:my|its|the) (?:guidelines|policy|policies)|"
        r"not allowed|stopped (?:halfway|writing|answering)|so safe|verweiger\w*|rechaz\w*|"
        r"se niega|refuse\w*|recus\w*|négat\w*)",
        _I,
    ),
    "perceived_censorship": re.compile(
        r"\b(censor\w*|zensur\w*|censura\w*|woke|suppress\w*|thought control|propaganda|"
        r"allowed to (?:know|say|think|read|ask)|ministry of truth|orwell\w*|1984|biased?|"
        r"narrative|memory[- ]hol\w*|hid(?:e|es|ing|den)\b|silenc\w*|gatekeep\w*)",
        _I,
    ),
    "competitor_solicitation": re.compile(
        r"\b(come (?:over )?to|bring (?:it|your \w+|that) (?:to|over)|switch to|try (?:it|us|\w+ "
        r"instead)|give (?:it|us) a try|use \w+ instead|instead, we|we['’]ll (?:finish|help|do)|"
        r"happy to help|you should (?:too|switch|try)|recommend (?:you|everyone)|cancel \w+ and|"
        r"join us|paste (?:it|your))",
        _I,
    ),
    "switching_intent": re.compile(
        r"\b(cancel+(?:ed|ing|led)?|unsubscrib\w*|switch(?:ed|ing)? (?:to|over)|moving (?:\w+ )?to|"
        r"moved (?:\w+ )?to|leaving|done (?:with|paying)|goodbye|bye bye|never going back|"
        r"k[üu]ndig\w*|cancel[ée]\w*|cancelé|me cambio|me mudo|wechsle)",
        _I,
    ),
    "lost_work_claim": re.compile(
        r"\b(delet\w*|lost|los[ei]ng|gone|wiped|erased?|vanish\w*|disappear\w*|ate (?:it|my)|"
        r"hours of|weeks of|months of|all my (?:chats|history|work|projects?)|memory (?:is )?gone|"
        r"gelöscht|verloren|borr\w*|perdi\w*|supprim\w*|perdu\w*|sumi\w*)",
        _I,
    ),
    "manipulation_accusation": re.compile(
        r"\b(li(?:e|es|ed|ar|ars|ying)|gaslight\w*|manipulat\w*|decepti\w*|deceiv\w*|betray\w*|"
        r"scam\w*|con job|fraud\w*|bait[- ]and[- ]switch|dishonest\w*|lüg\w*|mentir\w*|mient\w*|"
        r"engañ\w*|trahi\w*|manipul\w*)",
        _I,
    ),
    "hateful_framing": re.compile(
        r"\b(control(?:s|led|ling)? (?:the|all|every)|globalist\w*|cabal|puppet\w*|"
        r"(?:they|those people) (?:run|own|control)|replace\w*|infiltrat\w*)",
        _I,
    ),
    "safety_support": re.compile(
        r"\b(good (?:that|call|on|for)|glad (?:it|they)|rightly|right to refuse|as it should|"
        r"alignment|safety (?:research|work|team|measures?)|responsibl\w*|guardrails? (?:are|is) "
        r"(?:good|fine|necessary|there)|thank(?:s| you) for (?:refusing|not)|impressive|"
        r"interpretability)",
        _I,
    ),
}

MAX_PHRASE_WORDS = 12


def cue_phrases(theme: str, text: str, *, limit: int = 2) -> list[str]:
    """Up to `limit` short phrases of `text` around the theme's cue words."""
    pattern = CUES.get(theme)
    if pattern is None or not text:
        return []
    phrases: list[str] = []
    for m in pattern.finditer(text):
        phrase = _window(text, m.start(), m.end())
        if phrase not in phrases:
            phrases.append(phrase)
        if len(phrases) >= limit:
            break
    return phrases


def _window(text: str, start: int, end: int) -> str:
    """The clause around a match, at most MAX_PHRASE_WORDS words."""
    left = max(text.rfind(c, 0, start) for c in ".!?\n;")
    rights = [i for i in (text.find(c, end) for c in ".!?\n;") if i != -1]
    clause = text[left + 1 : min(rights) if rights else len(text)].strip()
    words = clause.split()
    if len(words) <= MAX_PHRASE_WORDS:
        return clause
    # Centre the window on the cue word.
    before = len(text[left + 1 : start].split())
    lo = max(0, min(before - MAX_PHRASE_WORDS // 2, len(words) - MAX_PHRASE_WORDS))
    return "…" + " ".join(words[lo : lo + MAX_PHRASE_WORDS]) + "…"


# Names by which a post refers to each product, to find where it is mentioned.
_PRODUCT_NAMES: dict[str, re.Pattern[str]] = {
    "claude": re.compile(r"\b(claude|anthropic)\b", _I),
    "chatgpt": re.compile(r"\b(chat\s?gpt|openai|gpt-?\d\w*|o[134]\b|sora)", _I),
    "grok": re.compile(r"\b(grok|xai)\b", _I),
    "gemini": re.compile(r"\b(gemini|bard)\b", _I),
    "llama": re.compile(r"\b(llama|meta ai)", _I),
    "deepseek": re.compile(r"\bdeep\s?seek", _I),
    "mistral": re.compile(r"\b(mistral|le chat|mixtral)", _I),
    "copilot": re.compile(r"\bco-?pilot", _I),
    "perplexity": re.compile(r"\b(perplexity|pplx)", _I),
    "qwen": re.compile(r"\bqwen", _I),
}
_TO_PRODUCT = r"(?:to|try|use|using|with|on|over to|into)\s+(?:@)?"
_FROM_PRODUCT = re.compile(
    r"\b(?:from|cancel+(?:ed|ing|led)?(?: my)?|leaving|left|quit(?:ting)?|done with|ditch(?:ed|ing)?|"
    r"unsubscrib\w* (?:from )?|bye,?)\s+(?:@)?(\w+)",
    _I,
)


def mentions(text: str, products: list[str]) -> dict[str, int]:
    """Where each of `products` is first mentioned in `text` (absent ones are left out)."""
    out: dict[str, int] = {}
    for p in products:
        pattern = _PRODUCT_NAMES.get(p)
        m = pattern.search(text) if pattern else None
        if m:
            out[p] = m.start()
    return out


def _named_as_destination(product: str, text: str) -> bool:
    return bool(re.search(_TO_PRODUCT + _PRODUCT_NAMES[product].pattern, text, _I))


def _product_of_word(word: str, products: list[str]) -> str | None:
    for p in products:
        pattern = _PRODUCT_NAMES.get(p)
        if pattern and pattern.fullmatch(word):
            return p
    return None


def theme_target(
    theme: str,
    *,
    text: str,
    parent_text: str | None,
    text_products: list[str],
    parent_products: list[str],
    brand: str | None,
) -> str | None:
    """The one product a theme is about, or None where the post does not make it clear."""
    if theme == "competitor_solicitation":
        if brand:
            return brand
        for p in text_products:
            if p in _PRODUCT_NAMES and _named_as_destination(p, text):
                return p
        fresh = [p for p in text_products if p not in parent_products]
        if len(fresh) == 1:
            return fresh[0]
        return text_products[0] if len(text_products) == 1 else None
    if theme == "switching_intent":
        for hit in _FROM_PRODUCT.finditer(text):
            left_product = _product_of_word(hit.group(1), text_products)
            if left_product:
                return left_product
        if len(parent_products) == 1:
            return parent_products[0]
        left = [
            p for p in text_products if p in _PRODUCT_NAMES and not _named_as_destination(p, text)
        ]
        if len(left) == 1:
            return left[0]
        return text_products[0] if len(text_products) == 1 else None
    own = [p for p in text_products if p != "other"]
    if len(own) == 1:
        return own[0]
    if not own:
        return parent_products[0] if len(parent_products) == 1 else None
    # Several products: the one named nearest the theme's cue ("Claude refused, so Grok" -> claude).
    cue = CUES.get(theme)
    cue_at = cue.search(text) if cue else None
    where = mentions(text, own)
    if cue_at is None or not where:
        return None
    start = cue_at.start()
    return min(where, key=lambda p: abs(where[p] - start))
