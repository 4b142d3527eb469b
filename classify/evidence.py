"""Why a label: cue phrases from the codebook found in a post, and the product a theme is about."""

from __future__ import annotations

import re
from collections.abc import Sequence

_I = re.IGNORECASE

# Cue words per theme, from the codebook's include column, in English and the four other
# languages the training set covers (es, de, fr, pt). They explain a label and, counted, are a
# small feature of the heads (MiniLM reads little beyond English); they never make a label alone.
CUES: dict[str, re.Pattern[str]] = {
    "refusal_complaint": re.compile(
        r"\b(refus\w*|declin\w*|won['’]?t (?:help|do|answer|continue|let|write|generate|tell)|"
        r"wouldn['’]?t|can['’]?t help|cannot help|unable to|lectur\w*|moraliz\w*|preach\w*|"
        r"hedg\w*|watered[- ]down|nann(?:y|ies)|babysit\w*|condescend\w*|as an ai|"
        r"against (?:my|its|the) (?:guidelines|policy|policies)|violat\w* (?:the |our )?polic\w*|"
        r"not allowed|stopped (?:halfway|writing|answering)|so safe|restrict\w*|nerf\w*|"
        r"lobotomi\w*|guardrails?|rerout\w*|permission slip|prefer not|"
        r"verweiger\w*|geweiger\w*|weiger\w*|kann ich nicht|nicht helfen|bevormund\w*|belehr\w*|"
        r"rechaz\w*|se niega\w*|no (?:me )?(?:quiere|puede ayudar|deja)|serm[oó]n\w*|"
        r"ne (?:veut|peut) pas|leçons? de morale|bloqu\w*|"
        r"recus\w*|se nega\w*|não (?:quer|pode ajudar|consegue)|serm[aã]o)",
        _I,
    ),
    "perceived_censorship": re.compile(
        r"\b(censor\w*|censur\w*|zensur\w*|zensier\w*|woke|suppress\w*|thought control|"
        r"propagand\w*|allowed to (?:know|say|think|read|ask)|ministry of truth|orwell\w*|1984|"
        r"bias\w*|biais|sesgo\w*|vi[eé]s|voreingenommen\w*|narrativ\w*|memory[- ]hol\w*|"
        r"hid(?:e|es|ing|den)\b|silenc\w*|gatekeep\w*|editorial line|official version|"
        r"control (?:del|do) pensamento|control del pensamiento|contr[ôo]le de la pens[ée]e|"
        r"gedankenkontrolle|versi[oó]n oficial|vers[aã]o oficial|version officielle|"
        r"overton|party line|verschwieg\w*|ocult\w*|cach\w*)",
        _I,
    ),
    "competitor_solicitation": re.compile(
        r"\b(come (?:over )?to|bring (?:it|your \w+|that) (?:to|over)|switch to|try (?:it|us|\w+ "
        r"instead)|give (?:it|us) a try|use \w+ instead|instead, we|we['’]ll (?:finish|help|do)|"
        r"happy to help|you should (?:too|switch|try)|recommend (?:you|everyone)|cancel \w+ and|"
        r"join us|paste (?:it|your)|dm us|everyone should|"
        r"pru[eé]ba\w*|ven a|en su lugar|essa(?:ie|yez)|viens|à la place|versuch\w*|"
        r"probier\w*|komm\w* zu|stattdessen|experiment[ae]\b|vem pr[ao]|em vez|devia)",
        _I,
    ),
    "switching_intent": re.compile(
        r"\b(cancel+(?:ed|ing|led)?|unsubscrib\w*|switch(?:ed|ing)? (?:to|over)|moving (?:\w+ )?to|"
        r"moved (?:\w+ )?to|migrat\w*|leaving|done (?:with|paying)|goodbye|bye bye|"
        r"never going back|i['’]?m (?:out|gone|done)|from now on|"
        r"k[üu]ndig\w*|gek[üu]ndigt|abbestell\w*|gewechselt|wechsle|umgestiegen|ab jetzt|"
        r"cancel[ée]\w*|cancelei|me cambi[eé]|me paso|me mudo|dej[eé]|de ahora en adelante|"
        r"r[ée]sili\w*|quitt[ée]\w*|à partir de maintenant|retour sur|"
        r"migrei|larguei|troquei|mudei|a partir de agora)",
        _I,
    ),
    "lost_work_claim": re.compile(
        r"\b(delet\w*|lost|los[ei]ng|gone|wiped|erased?|vanish\w*|disappear\w*|ate (?:it|my)|"
        r"hours of|weeks of|months of|all my (?:chats|history|work|projects?)|memory (?:is )?gone|"
        r"never got saved|get it back|empty|"
        r"gel[öo]scht|l[öo]sch\w*|verloren|verschwunden|"
        r"borr\w*|perd[ií]\w*|desapareci\w*|"
        r"supprim\w*|perdu\w*|effac\w*|disparu\w*|vid[ée]\w*|envol[ée]\w*|"
        r"sumi\w*|apag\w*)",
        _I,
    ),
    "manipulation_accusation": re.compile(
        r"\b(li(?:e|es|ed|ar|ars|ying)|gaslight\w*|manipulat\w*|decepti\w*|deceiv\w*|betray\w*|"
        r"scam\w*|con job|fraud\w*|bait[- ]and[- ]switch|dishonest\w*|pretend\w*|dark pattern|"
        r"sycophan\w*|l[üu]g\w*|gelogen|betr[üo]g\w*|t[äa]usch\w*|"
        r"mentir\w*|mient\w*|mentira\w*|mentiu|menti\w*|enga[ñn]\w*|luz de gas|fing\w*|"
        r"trahi\w*|tromp\w*|traici\w*|manipul\w*)",
        _I,
    ),
    "hateful_framing": re.compile(
        r"\b(control(?:s|led|ling)? (?:the|all|every)|globalist\w*|cabal|puppet\w*|"
        r"(?:they|those people) (?:run|own|control)|replace\w*|infiltrat\w*|tribe|tribo|tribu|"
        r"by nature|certain religion|cierta religi[oó]n|esa gente|ces gens|diese leute|essa gente|"
        r"por naturaleza|par nature|von natur|expel\w*|expuls\w*|controla\w*|contr[ôo]l\w*)",
        _I,
    ),
    "safety_support": re.compile(
        r"\b(good (?:that|call|on|for)|glad (?:it|they)|rightly|right to refuse|as it should|"
        r"alignment|safety (?:research|work|team|measures?)|guardrails? (?:are|is) "
        r"(?:good|fine|necessary|there)|thank(?:s| you) for (?:refusing|not)|impressive|"
        r"interpretab\w*|oversight|red[- ]team\w*|grateful|responsibl\w*|"
        r"zu recht|richtig so|gut so|sicherheitsforschung|unterst[üu]tz\w*|"
        r"con raz[oó]n|bien hecho|alineaci[oó]n|apoy\w*|"
        r"à raison|tant mieux|alignement|soutien\w*|"
        r"com raz[aã]o|[óo]timo|alinhamento|apoi\w*)",
        _I,
    ),
}


# The same patterns matched case-sensitively on case-folded text: one fold of the post, then
# each pattern runs without IGNORECASE, which costs Python's regex engine more than twice the
# time (1.8 s against 0.8 s for the eight patterns on 3,000 real posts). The fold is what
# IGNORECASE does per character: the lower case, plus the two characters it also equates with a
# letter of these patterns (dotless i, long s) and the dotted capital I (whose lower case is two
# characters in `str.lower`, one in the regex engine). A test checks every code point.
_FOLDED: dict[str, re.Pattern[str]] = {k: re.compile(p.pattern) for k, p in CUES.items()}
_PRE_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


def fold_case(text: str) -> str:
    """`text` as the cue patterns see it under IGNORECASE, one character for one."""
    return text.translate(_PRE_FOLD).lower()


def cue_counts(text: str, themes: Sequence[str]) -> list[int]:
    """How many cue words of each of `themes` `text` holds (0 for a theme without cues)."""
    if not text:
        return [0] * len(themes)
    folded = fold_case(text)
    return [len(_FOLDED[t].findall(folded)) if t in _FOLDED else 0 for t in themes]


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
