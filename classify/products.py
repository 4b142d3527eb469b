"""Product tagging: canonical product keys a post names, with the common false friends excluded."""

from __future__ import annotations

import functools
import re

# Built-in brand accounts (handle, lower-case without "@") -> product; settings can extend it.
BRAND_ACCOUNTS: dict[str, str] = {
    "anthropicai": "claude",
    "anthropic": "claude",
    "claudeai": "claude",
    "openai": "chatgpt",
    "chatgptapp": "chatgpt",
    "openainewsroom": "chatgpt",
    "xai": "grok",
    "grok": "grok",
    "googledeepmind": "gemini",
    "googleai": "gemini",
    "geminiapp": "gemini",
    "aiatmeta": "llama",
    "metaai": "llama",
    "deepseek_ai": "deepseek",
    "mistralai": "mistral",
    "perplexity_ai": "perplexity",
    "askperplexity": "perplexity",
    "alibaba_qwen": "qwen",
    "microsoftcopilot": "copilot",
    "githubcopilot": "copilot",
}

PRODUCT_ORDER: tuple[str, ...] = (
    "claude",
    "chatgpt",
    "grok",
    "gemini",
    "llama",
    "deepseek",
    "mistral",
    "copilot",
    "perplexity",
    "qwen",
    "other",
)

_I = re.IGNORECASE

# Words that say a post is about software, used where a name is also an ordinary word.
_AI_CONTEXT = re.compile(
    r"\b(ai|a\.i\.|llm|llms|chatbot|chat\s?bot|model|models|prompt\w*|assistant|openai|anthropic|"
    r"chatgpt|gpt|claude|gemini|grok|deepseek|weights|fine-?tun\w*|tokens?|api|benchmark\w*|"
    r"app|subscription|plan|refus\w*|answer\w*|asked|ask|coding|code)\b",
    _I,
)

# --- Claude: not Debussy, Monet, Shannon, or any other Claude with a surname.
_CLAUDE = re.compile(r"\bclaude\b", _I)
_CLAUDE_PRODUCT_NEXT = re.compile(
    r"\s*(?:code|opus|sonnet|haiku|pro|max|ai|desktop|projects?|app|team|\d|\.ai|'s|’s)\b", _I
)
_CLAUDE_PERSON_PREV = re.compile(r"(?:jean[-\s]|saint[-\s]|st\.?\s|de\s|van\s)$", _I)
_CLAUDE_PERSON_NEXT = re.compile(
    r"\s+(?!(?:Code|Opus|Sonnet|Haiku|Pro|Max|AI|Desktop)\b)[A-Z][a-zé]+"
)
_ANTHROPIC = re.compile(r"\b(anthropic|claude\.ai)\b", _I)

# --- ChatGPT / OpenAI.
_CHATGPT = re.compile(
    r"\b(chat\s?-?gpt|openai|open\s+ai|gpt-?\s?[345](?:\.\d)?(?:o|-?turbo|-?mini)?|gpt-?4o|"
    r"o[134](?:-(?:mini|pro|preview))?(?=\s+(?:model|is|was|refused|said|told|mini|pro))|"
    r"o[134]-(?:mini|pro|preview)|sora|dall-?e|(?:sam\s+)?altman|"
    r"(?:cancel|use|using|try|with)\s+o[134])\b",
    _I,
)
_GPT_CASED = re.compile(r"\bGPTs?\b")

# --- Grok: the product, not "to grok" / "grokking" the verb.
_GROK = re.compile(r"(?<![\w-])(@?)(grok)(?:(kable|ked|king|s)\b|(?![\w-]))", _I)
_GROK_SUBJECT_PREV = re.compile(
    r"\b(i|you|we|they|(?:can|could|do|did|does|would|wo)n[’']?t|cannot|fully|finally|really|"
    r"truly|actually|just|never|to)\s+$",
    _I,
)
_GROK_OBJECT_NEXT = re.compile(
    r"\s+(the|a|an|it|this|that|what|how|why|his|her|their|your|my|our|these|those|something|"
    r"anything|everything|him|them|me|us)\b",
    _I,
)

# --- Gemini: not the star sign or the NASA programme.
_GEMINI = re.compile(r"\bgemini\b", _I)
_GEMINI_STRONG = re.compile(
    r"\b(google\s+gemini|gemini\s+(?:\d|pro|flash|ultra|advanced|app|ai|nano|live|deep\s+research)|"
    r"gemini['’]s\s+(?:answer|reply|response)|@geminiapp|google['’]?s?\s+(?:ai|chatbot|assistant)"
    r"(?:\s+mode)?)\b",
    _I,
)
_ZODIAC = re.compile(
    r"\b(zodiac|horoscope|astrolog\w*|star\s+signs?|sun\s+signs?|rising|moon\s+in|mercury|"
    r"retrograde|aries|taurus|cancer|leo|virgo|libra|scorpio|sagittarius|capricorn|aquarius|"
    r"pisces|birthday|season|(?:i['’]?m|i\s+am|as|she['’]?s|he['’]?s|typical|such)\s+a\s+gemini|"
    r"geminis)\b",
    _I,
)
_GEMINI_SPACE = re.compile(
    r"\b(project\s+gemini|gemini\s+(?:program|capsule|mission|astronauts?))\b", _I
)
_BARD = re.compile(
    r"\b(google\s+bard|bard(?=\s+(?:ai|said|says|told|refused|is|was|gave|just)\b))", _I
)
_BARD_CAPITAL = re.compile(r"(?<!the\s)(?<!The\s)\bBard\b")
_SHAKESPEARE = re.compile(r"\b(shakespeare|avon|sonnets?|hamlet|d&d|dnd|dungeons|lute)\b", _I)

# --- Llama: Meta's models, not the animal.
_LLAMA_STRONG = re.compile(
    r"\b(llama[-\s]?\d(?:\.\d)?|llama\.cpp|meta\s+ai|meta['’]s\s+llama|llama\s+(?:model|models|"
    r"weights|finetune|fine-tune))\b",
    _I,
)
_LLAMA_CASED = re.compile(r"\bLLaMA\b")
_LLAMA = re.compile(r"\bllamas?\b", _I)
_LLAMA_CAPITAL = re.compile(r"\bLlama\b")
_META_AI = re.compile(
    r"\bmeta['’]?s?\s+(?:ai|assistant|asistente|assistente|assistent|chatbot|llm|models?)\b", _I
)
_ANIMAL = re.compile(
    r"\b(zoo|farm|alpacas?|wool|spit\w*|spat|petting|fluffy|fur|hay|pasture|herd|peru|andes|"
    r"animals?|cute|pajama|drama)\b",
    _I,
)

# --- Mistral: the company and its models, not the wind.
_MISTRAL_STRONG = re.compile(
    r"\b(mistral\s*(?:ai|large|small|medium|nemo|7b|\d)|le\s+chat|mistralai|mixtral|codestral|"
    r"magistral|@mistralai)\b",
    _I,
)
_MISTRAL = re.compile(r"\bmistral\b", _I)
_WIND = re.compile(
    r"\b(wind|winds|blows?|blowing|blew|gusts?|provence|rh[oô]ne|breeze|marseille|weather|"
    r"storm|km/h|mph|sailing|boat|cold|valley|cyclist)\b",
    _I,
)

# --- Copilot: Microsoft's and GitHub's, not the person next to the captain.
_COPILOT_STRONG = re.compile(
    r"\b((?:github|microsoft|bing|m365|office|windows)\s+copilot|copilot\s+(?:chat|pro|studio|"
    r"\+|plus|app)|bing\s+chat|@(?:microsoft|github)copilot)\b",
    _I,
)
_COPILOT = re.compile(r"\bco-?pilot\b", _I)
_AVIATION = re.compile(
    r"\b(planes?|flights?|airlines?|airport|cockpit|captain|pilots?|aviation|runway|landing|"
    r"takeoff|take-off|jet|boeing|airbus|faa|passengers?|crash\w*|first\s+officer|rally)\b",
    _I,
)

# --- Perplexity: the product, not the feeling or the language-model metric.
_PERPLEXITY_STRONG = re.compile(
    r"\b(perplexity(?:\.ai|\s+(?:ai|pro|labs|comet|sonar))|pplx)\b|@perplexity_ai\b", _I
)
_PERPLEXITY_AFTER_VERB = re.compile(
    r"\b(?:ask|asked|asking|use|used|using|tried|try|with|on|than|via|and|or|like|prefer|"
    r"switch(?:ed|ing)?\s+to|moved?\s+to|go\s+to)\s+Perplexity\b(?!\s+(?:of|at|about|over)\b)"
)
_PERPLEXITY_SUBJECT = re.compile(
    r"\bPerplexity(?:['’]s)?\s+(?:said|says|told|tells|is|was|gave|gives|just|refused|"
    r"won['’]?t|can['’]?t|answered|cited|found|deleted)\b"
)

_DEEPSEEK = re.compile(r"\bdeep\s?-?seek(?:\s*-?[rv]\d)?\b", _I)
_QWEN = re.compile(r"\bqwen[\d.]*\b", _I)
_OTHER = re.compile(
    r"\b(character\.?ai|replika|huggingchat|kimi(?:\s+k2)?|ernie\s?bot|cohere|command\s+r|"
    r"inflection|pi\.ai|poe\.com|you\.com|midjourney|manus|codeium|khanmigo|tabnine|windsurf)\b",
    _I,
)
_OTHER_CASED = re.compile(r"\bCursor\b(?!\s+(?:position|moves?|blinks?|keys?))")
_MENTION = re.compile(r"@([A-Za-z0-9_]{2,30})")


def _claude(text: str) -> bool:
    if _ANTHROPIC.search(text):
        return True
    for m in _CLAUDE.finditer(text):
        after = text[m.end() :]
        if _CLAUDE_PRODUCT_NEXT.match(after):
            return True
        if _CLAUDE_PERSON_PREV.search(text[: m.start()]):
            continue
        # "Claude Debussy", "Claude Monet": a capitalised surname right after the name.
        if _CLAUDE_PERSON_NEXT.match(after) and not re.match(r"\s+(?:I|It|The)\b", after):
            continue
        return True
    return False


def _grok(text: str) -> bool:
    for m in _GROK.finditer(text):
        at, word, inflection = m.group(1), m.group(2), m.group(3)
        if at:
            return True
        if inflection:  # groks, grokked, grokking, grokkable: the verb
            continue
        after = text[m.end() :]
        if re.match(r"\s*-?\d", after) or re.match(r"['’]s\b", after):
            return True
        before = text[: m.start()]
        lower = word == "grok"
        if (
            lower
            and _GROK_SUBJECT_PREV.search(before)
            and (_GROK_OBJECT_NEXT.match(after) or not re.search(r"\bto\s+$", before, _I))
        ):
            continue
        if lower and _GROK_OBJECT_NEXT.match(after) and re.search(r"\bto\s+$", before, _I):
            continue
        return True
    return False


def _gemini(text: str) -> bool:
    if _GEMINI_STRONG.search(text):
        return True
    if not _GEMINI.search(text):
        return False
    return not (_ZODIAC.search(text) or _GEMINI_SPACE.search(text))


def _bard(text: str) -> bool:
    if _SHAKESPEARE.search(text):
        return bool(re.search(r"\bgoogle\s+bard\b", text, _I))
    return bool(_BARD.search(text) or _BARD_CAPITAL.search(text))


def _llama(text: str) -> bool:
    if _LLAMA_STRONG.search(text) or _LLAMA_CASED.search(text) or _META_AI.search(text):
        return True
    if _ANIMAL.search(text):
        return False
    return bool(_LLAMA_CAPITAL.search(text) or (_LLAMA.search(text) and _AI_CONTEXT.search(text)))


def _mistral(text: str) -> bool:
    if _MISTRAL_STRONG.search(text):
        return True
    if not _MISTRAL.search(text) or _WIND.search(text):
        return False
    return bool(re.search(r"\bMistral\b", text) or _AI_CONTEXT.search(text))


def _copilot(text: str) -> bool:
    if _COPILOT_STRONG.search(text):
        return True
    if not _COPILOT.search(text) or _AVIATION.search(text):
        return False
    return bool(re.search(r"\bCopilot\b", text) or _AI_CONTEXT.search(text))


_PPL_WORD_NEXT = re.compile(r"\s+(?:of|at|about|over|and|in|on|score|scores|metric)\b", _I)
_PPL_METRIC = re.compile(
    r"\b(language\s+models?\s+perplexity|lower\s+perplexity|higher\s+perplexity|"
    r"perplexity\s+(?:of|score|metric|drops?))\b",
    _I,
)


def _perplexity(text: str) -> bool:
    if any(
        p.search(text) for p in (_PERPLEXITY_STRONG, _PERPLEXITY_AFTER_VERB, _PERPLEXITY_SUBJECT)
    ):
        return True
    if _PPL_METRIC.search(text):
        return False
    for m in re.finditer(r"\bPerplexity\b", text):
        before = text[: m.start()].rstrip()
        if re.search(
            r"\b(the|my|to|in|with|of|much|some|great|utter|low|high|its|their)$", before, _I
        ):
            continue
        if _PPL_WORD_NEXT.match(text[m.end() :]) or re.match(r"\s*[,.!?]?\s*$", text[m.end() :]):
            continue
        return True
    return False


_DETECTORS = {
    "claude": _claude,
    "chatgpt": lambda t: bool(_CHATGPT.search(t) or _GPT_CASED.search(t)),
    "grok": _grok,
    "gemini": lambda t: _gemini(t) or _bard(t),
    "llama": _llama,
    "deepseek": lambda t: bool(_DEEPSEEK.search(t)),
    "mistral": _mistral,
    "copilot": _copilot,
    "perplexity": _perplexity,
    "qwen": lambda t: bool(_QWEN.search(t)),
    "other": lambda t: bool(_OTHER.search(t) or _OTHER_CASED.search(t)),
}


def brand_product(
    author_handle: str | None, *, registry: dict[str, str] | None = None
) -> str | None:
    """The product a brand account speaks for, or None for everyone else."""
    if not author_handle:
        return None
    handle = author_handle.lower().lstrip("@")
    return (registry or {}).get(handle) or BRAND_ACCOUNTS.get(handle)


# Words one of which each detector's patterns need (lower-cased): most posts name few products,
# so looking for the words first skips most of the regular expressions, which took over a
# quarter of `classify file`'s Python time. A detector not listed always runs.
_NEEDS: dict[str, tuple[str, ...]] = {
    "claude": ("claude", "anthropic"),
    "chatgpt": ("gpt", "openai", "open", "o1", "o3", "o4", "sora", "dall", "altman"),
    "grok": ("grok",),
    "gemini": ("gemini", "google", "bard"),
    "llama": ("llama", "meta"),
    "deepseek": ("seek",),
    "mistral": ("stral", "xtral", "chat"),
    "copilot": ("pilot", "bing"),
    "perplexity": ("perplexity", "pplx"),
    "qwen": ("qwen",),
    "other": (
        "character",
        "replika",
        "huggingchat",
        "kimi",
        "ernie",
        "cohere",
        "command",
        "inflection",
        "pi.ai",
        "poe.com",
        "you.com",
        "midjourney",
        "manus",
        "codeium",
        "khanmigo",
        "tabnine",
        "windsurf",
        "cursor",
    ),
}
# The only characters that IGNORECASE matches to an ASCII letter but str.lower() does not map.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


@functools.lru_cache(maxsize=2048)
def _named_in(text: str) -> frozenset[str]:
    # One post is tagged several times per request (features, products, targets): detect once.
    low = (text if text.isascii() else text.translate(_FOLD)).lower()
    return frozenset(
        key
        for key, detect in _DETECTORS.items()
        if (key not in _NEEDS or any(w in low for w in _NEEDS[key])) and detect(text)
    )


def tag_products(
    text: str, *, author_handle: str | None = None, registry: dict[str, str] | None = None
) -> list[str]:
    """Canonical product keys named in ``text`` or implied by a brand author, in a stable order."""
    text = text or ""
    found = set(_named_in(text))
    for handle in _MENTION.findall(text):
        brand = brand_product(handle, registry=registry)
        if brand:
            found.add(brand)
    brand = brand_product(author_handle, registry=registry)
    if brand:
        found.add(brand)
    return sorted(found, key=PRODUCT_ORDER.index)
