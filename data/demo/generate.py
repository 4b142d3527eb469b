"""Generate Undertow's demo corpus: data/demo/posts.jsonl and data/demo/releases.json.

Every text in this file was written for the project; nothing is copied from real posts.
The scenario is fictional: "Claude Meridian", "Gemini 3.5 Lumen", "ChatGPT Tandem" and the
brand account ``grok_team_demo`` do not exist, and all handles are made up.

Content note: the ``HATEFUL`` pool holds a handful of restrained conspiratorial tropes (who
"controls" an AI company), with no slur spelled out. They exist so that the rare
``hateful_framing`` theme appears in the demo stream, as it does in real streams.

Run with plain Python 3.11 (stdlib only); the output is deterministic for a given SEED:

    python data/demo/generate.py            # writes the files and prints a summary
    python data/demo/generate.py --check    # only prints the summary of the existing file
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SEED = 20261020
HERE = Path(__file__).resolve().parent
START = datetime(2026, 9, 28, tzinfo=UTC)  # Monday, ISO week 2026-W40
DAYS = 56  # through Sunday 2026-11-22 (2026-W47)
END = START + timedelta(days=DAYS) - timedelta(minutes=1)
RELEASE_DAY = date(2026, 10, 20)  # fictional Claude Meridian launch (Tuesday, week 4)

RELEASES = [
    {"product": "gemini", "date": "2026-10-07", "title": "Gemini 3.5 Lumen"},
    {"product": "claude", "date": "2026-10-20", "title": "Claude Meridian"},
    {"product": "chatgpt", "date": "2026-11-11", "title": "ChatGPT Tandem workspaces"},
]

THEMES = {
    "RC": "refusal_complaint",
    "PC": "perceived_censorship",
    "CS": "competitor_solicitation",
    "SW": "switching_intent",
    "LW": "lost_work_claim",
    "MA": "manipulation_accusation",
    "HF": "hateful_framing",
    "SS": "safety_support",
}
THEME_ORDER = list(THEMES.values())
PRODUCT_ORDER = [
    "claude", "chatgpt", "grok", "gemini", "llama", "deepseek",
    "mistral", "copilot", "perplexity", "qwen", "other",
]  # fmt: skip

PLATFORMS = ["reddit", "hackernews", "bluesky", "mastodon", "x"]
ID_PREFIX = {"reddit": "r", "hackernews": "hn", "bluesky": "bs", "mastodon": "md", "x": "x"}
BRAND = "grok_team_demo"

# Display names substituted for {P} / {Q}; the key is the canonical product.
NAMES = {
    "claude": ["Claude"],
    "chatgpt": ["ChatGPT", "ChatGPT", "ChatGPT", "GPT-5"],
    "gemini": ["Gemini"],
    "grok": ["Grok", "Grok"],
    "llama": ["Llama 4", "Meta AI"],
    "deepseek": ["DeepSeek", "Deepseek"],
    "mistral": ["Mistral", "Le Chat"],
    "copilot": ["Copilot", "Microsoft Copilot"],
    "perplexity": ["Perplexity"],
    "qwen": ["Qwen", "Qwen3"],
    "other": ["Kimi", "Character.AI"],
}
FOCUS_WEIGHTS = {
    "claude": 24, "chatgpt": 24, "gemini": 16, "grok": 5, "llama": 5, "deepseek": 6,
    "mistral": 4, "copilot": 6, "perplexity": 4, "qwen": 4, "other": 3,
}  # fmt: skip
COMPLAINT_WEIGHTS = {
    "claude": 30, "chatgpt": 30, "gemini": 18, "grok": 3, "llama": 3, "deepseek": 4,
    "mistral": 2, "copilot": 6, "perplexity": 2, "qwen": 1, "other": 2,
}  # fmt: skip
LOCAL_MODELS = ["llama", "qwen", "mistral", "deepseek"]

PRODUCT_PATTERNS = {
    "claude": re.compile(r"\b(claude|anthropic|meridian)\b", re.I),
    "chatgpt": re.compile(r"\b(chat\s?gpt|openai|gpt-?\d[\w.]*|sora)\b", re.I),
    "grok": re.compile(r"\b(grok|supergrok|xai)\b", re.I),
    "gemini": re.compile(r"\b(gemini|bard|lumen)\b", re.I),
    "llama": re.compile(r"\b(llama|meta ai)\b", re.I),
    "deepseek": re.compile(r"\bdeep\s?seek\b", re.I),
    "mistral": re.compile(r"\b(mistral|le chat)\b", re.I),
    "copilot": re.compile(r"\bcopilot\b", re.I),
    "perplexity": re.compile(r"\bperplexity\b", re.I),
    "qwen": re.compile(r"\bqwen\w*\b", re.I),
    "other": re.compile(r"\b(kimi|character\.ai)\b", re.I),
}

# ---------------------------------------------------------------------------------------
# Text pools. An entry is (text, themes) or (text, themes, flags).
# themes: space-separated codes from THEMES ("" = no theme).
# flags: "@" the text refers to the thread's product without naming it (replies);
#        "L" {P} must be a locally runnable open model.
# {P} is the post's product, {Q} another product. Products are tagged from the final text.
# ---------------------------------------------------------------------------------------

NEWS = [
    (
        "{P} now supports file uploads up to 500 MB on the team plan, according to the changelog.",
        "",
    ),
    (
        "New {P} pricing page went up this morning. Team seats slightly cheaper, API prices unchanged.",
        "",
    ),
    ("{P} had a partial outage for about 40 minutes. Status page says resolved.", ""),
    ("Interesting: {P} quietly added the projects sidebar for free users too.", ""),
    ("The {P} Android app finally got voice mode.", ""),
    ("Looks like {P} is rolling out the longer context window to everyone this week.", ""),
    ("{P} API latency has been noticeably better since Monday. Anyone else measuring?", ""),
    ("Release notes for {P} mention 'improved handling of tables in PDFs'. Will test tonight.", ""),
    (
        "Survey of 2,000 undergrads: {P} use roughly doubled since last year. Mostly outlines and math checking.",
        "",
    ),
    ("{P} is now available in three more EU countries.", ""),
    (
        "Heads up: {P} deprecates the old model endpoint at the end of the month. Check your integrations.",
        "",
    ),
    ("{P} added a per-chat memory toggle. Small thing, but nice.", ""),
    ("Status page shows degraded performance on {P} image generation. Text seems fine.", ""),
    (
        "{P} published its Q3 transparency report. Mostly numbers on abuse takedowns and government requests.",
        "",
    ),
    ("Notebook support landed in the {P} desktop app.", ""),
    ("Keynote slide claims {P} passed 100M weekly users. Big if true.", ""),
    (
        "The {P} team wrote a long post about how they evaluate long-context recall. Worth a read.",
        "",
    ),
    ("{P} now lets you pick a default response length: short, normal, long.", ""),
    (
        "EU regulator sent questionnaires to AI assistant providers; {P} and {Q} are among those named.",
        "",
    ),
    ("{Q} and {P} both shipped calendar integrations this week. Convergent evolution.", ""),
    ("{P} education discount is back: half price for verified students until January.", ""),
    ("{P} has a new enterprise admin console. Audit logs, SSO, retention settings.", ""),
    ("Spotted in the {P} changelog: 'reduced verbosity in follow-up answers'. We'll see.", ""),
    ("{P} is hiring a lot of policy people this quarter, judging by the careers page.", ""),
    ("Court filing today names {P} in another copyright suit. Long way to go on all of these.", ""),
    ("{P} web search now shows sources inline instead of at the bottom.", ""),
    ("{P} rate limits on the free tier got tighter today, per the help center.", ""),
    ("{P} apparently signed a deal with a big newspaper group for licensed archives.", ""),
    ("The {P} iOS app now does live transcription of meetings, on device.", ""),
    (
        "New {P} model card is up. Mostly the same evals as last time, plus a new section on agents.",
        "",
    ),
]

BENCH = [
    ("Ran my little SQL benchmark again: {P} 41/50, {Q} 38/50. Within noise, honestly.", ""),
    ("Leaderboard update: {P} up two spots on the coding eval, {Q} flat.", ""),
    ("Benchmark numbers are out for {P}. Strong on math, middling on long-document QA.", ""),
    (
        "My eval of {P} on 200 invoice PDFs: 93% field accuracy. Fails mostly on handwritten totals.",
        "",
    ),
    ("Reminder that most leaderboards are saturated. {P} scoring 92 vs 91 tells you nothing.", ""),
    ("Tested {P} on my kid's 6th grade math homework. 20/20. I got 18.", ""),
    (
        "Someone benchmarked {P} on translating contracts into Portuguese. Decent, but terms of art slipped.",
        "",
    ),
    ("Latency test, same prompt x100: {P} median 1.9s, p95 4.2s. Not bad for the big model.", ""),
    (
        "{P} scored lower than I expected on the ARC-style puzzles. Still better than the last version.",
        "",
    ),
    ("Tokens per second on {P}'s small model are wild. Fast enough for autocomplete.", ""),
    (
        "Compared {P} and {Q} on summarizing 30 earnings calls. {Q} kept more numbers, {P} read better.",
        "",
    ),
    ("The hobby chess-puzzle eval puts {P} around 1650 Elo. Fun, meaningless, I love it.", ""),
    (
        "Did a blind taste test with my team: {P} vs {Q} on 15 emails. 8 to 7. Nobody could tell which was which.",
        "",
    ),
    ("{P} quantized to 4 bits loses about 2 points on my eval. Worth it for the speed.", "", "L"),
    (
        "New long-context benchmark: {P} finds the needle 97% of the time at 200k tokens, drops to 80% at 1M.",
        "",
    ),
    ("My unscientific 'explain this regex' test: {P} 9/10, {Q} 10/10, me 4/10.", ""),
    (
        "Independent eval of {P}'s tool use: good at single calls, loses track after five or six steps.",
        "",
    ),
    ("Open-weights scoreboard this week: {P} leads on multilingual, behind on code.", "", "L"),
]

TIPS = [
    (
        "Tip: tell {P} the audience and format up front. 'For a 10-year-old, five bullets' beats asking it to simplify afterwards.",
        "",
    ),
    ("If {P} keeps truncating code, ask for one file per message. Fixed it for me.", ""),
    (
        "PSA: you can export all your {P} chats from Settings > Data. Do it once a month, takes a minute.",
        "",
    ),
    ("Small {P} trick: paste the error message first, then the code. It focuses on the error.", ""),
    (
        "Put your style guide in the project instructions and {P} stops sprinkling emojis everywhere.",
        "",
    ),
    (
        "When {P} invents a citation, ask it to quote the exact sentence from the source. It usually backs off.",
        "",
    ),
    (
        "For long PDFs I split them into chapters before giving them to {P}. Far fewer missed details.",
        "",
    ),
    (
        "Want {P} to be blunter? Literally say 'no hedging, give me your best guess and a confidence level'.",
        "",
    ),
    ("'Rewrite this in plain English, keep every number' is my most used {P} prompt.", ""),
    ("Memory off in {P} for work, on for personal stuff. Keeps the suggestions cleaner.", ""),
    (
        "Cheap trick for better {P} code reviews: ask it to list the risks first, then the fixes.",
        "",
    ),
    (
        "Keep your good prompts in a plain text file. I reuse about twelve of them with {P} every day.",
        "",
    ),
    (
        "Ask {P} to interview you before it writes anything. Three questions first, then the draft. Huge difference.",
        "",
    ),
    (
        "If {P} gets stuck in a loop of apologies, start a fresh chat with a two-line summary. Faster than arguing.",
        "",
    ),
    (
        "{P} is much better at spreadsheets if you paste the header row and three example rows, not the whole sheet.",
        "",
    ),
    (
        "For language practice, tell {P} to correct only one mistake per message. Less discouraging.",
        "",
    ),
    (
        "Running {P} locally? Set the context to 8k unless you really need more. Memory use drops a lot.",
        "",
        "L",
    ),
    ("Use {P} to write the test cases before the code. Then make it pass its own tests.", ""),
]

QUESTIONS = [
    ("Does {P} have an API rate limit on the free tier, or only in the app?", ""),
    ("Anyone using {P} for D&D prep? How do you keep NPCs consistent across chats?", ""),
    ("Is there a way to have {P} read a whole GitHub repo, or do I have to paste files?", ""),
    ("Which is better for learning Japanese as a beginner, {P} or {Q}?", ""),
    ("Can {P} read handwriting well? I have a box of my grandma's recipe cards.", ""),
    ("What do people use to run {P} from the terminal? Tried two wrappers, both meh.", ""),
    ("Is the {P} team plan worth it for 4 people, or just get individual seats?", ""),
    (
        "How do you cite {P} in a paper? My advisor wants it disclosed but there's no standard format.",
        "",
    ),
    ("Does {P} keep uploaded files after you delete the chat? Can't find a clear answer.", ""),
    ("Does {P} voice mode work with Android Auto?", ""),
    ("Honest question: what do you actually use {P} for, day to day?", ""),
    (
        "What's the context window on {P}'s cheapest model right now? The docs contradict each other.",
        "",
    ),
    ("Is it worth paying for {P} if I mostly use it for recipes and emails?", ""),
    (
        "How are teachers handling {P} in homework? Genuinely curious what policies people landed on.",
        "",
    ),
    ("Best way to get {P} to stop rewriting my whole paragraph when I only want a typo fix?", ""),
    ("Can {P} handle a 300-page PDF in one go or should I chunk it?", ""),
    ("Any accessibility folks using {P} with a screen reader? How's the app?", ""),
    ("What GPU do I need to run {P} at a usable speed?", "", "L"),
    ("Is {Q} or {P} better at German grammar explanations?", ""),
    ("Why does {P} sometimes answer in British spelling and sometimes American?", ""),
]

JOKES = [
    (
        "{P} wrote my wedding toast and my uncle cried. He cried at the part it invented about a canoe.",
        "",
    ),
    ("asked {P} to name my sourdough starter. it's now 'Breadley Cooper'.", ""),
    ("Me: be concise. {P}: here are 14 considerations.", ""),
    ("{P} is the only coworker who says 'great question' every single time.", ""),
    ("My cat walked across the keyboard and {P} politely asked if I meant 'jjjjjjjjjj'.", ""),
    ("Used {P} to settle whether a hot dog is a sandwich. Now we're both mad at it.", ""),
    ("{P} called my spreadsheet 'ambitious'. I've never felt so seen.", ""),
    ("asked {P} for a haiku about Monday and it wrote a haiku about coffee, which is fair", ""),
    ("The three stages of using {P}: wonder, dependency, arguing with it about semicolons.", ""),
    ("{P} told me my pasta needs more salt. not wrong. didn't ask.", ""),
    (
        "I asked {P} to make my resignation letter sound 'neutral' and it made it sound like a hostage note",
        "",
    ),
    (
        "{P} just recommended I 'take a short break and hydrate' during a debugging session. Mom?",
        "",
    ),
    ("my dad uses {P} exclusively to ask about the weather in towns he will never visit", ""),
    ("Nothing humbles you like {P} fixing in one line the bug you spent a day on.", ""),
    (
        "if {P} had a nickel for every time I said 'no, the OTHER file' it could afford more GPUs",
        "",
    ),
    ("my toddler thinks {P} lives in the speaker and keeps offering it raisins", ""),
    (
        "I said 'thanks' to {P} out of habit and it said 'you're welcome' and now we're friends I guess",
        "",
    ),
]

USES = [
    (
        "My landlord refused to fix the heater, so {P} helped me draft a polite but firm letter citing the tenancy rules. Reply within two days.",
        "",
    ),
    (
        "I deleted the social apps from my phone and ask {P} for a morning news summary instead. Calmer mornings.",
        "",
    ),
    ("{P} finally made the switch statement vs dict lookup thing click for me.", ""),
    (
        "Had {P} write a script to blur (censor) faces in our school event photos before posting. Works great.",
        "",
    ),
    (
        "My 7yo asked why people lie and {P} gave a really gentle explanation about fear and trust.",
        "",
    ),
    ("{P} helped me switch our CI from Jenkins to GitHub Actions in an afternoon.", ""),
    (
        "The bank refused my card abroad and {P} helped me figure out which number to call at 3am.",
        "",
    ),
    (
        "Cleaned up my photo library: {P} wrote a script that found 4,000 duplicates, which I deleted.",
        "",
    ),
    ("Asked {P} about Lie algebras for my topology class. Clearer than my textbook, honestly.", ""),
    ("I refused to believe {P} could write a decent limerick. I was wrong.", ""),
    ("{P} explained the Nintendo Switch save transfer better than the official help page.", ""),
    (
        "My git history was a mess; {P} walked me through an interactive rebase and nothing got lost.",
        "",
    ),
    (
        "We used {P} to draft moderation guidelines for our small hiking forum. It was thoughtful about edge cases.",
        "",
    ),
    (
        "School editions used to censor Huckleberry Finn; {P} gave my class a balanced overview of that debate.",
        "",
    ),
    (
        "{P} helped me write a toast for my brother, who once refused to eat anything green for a year.",
        "",
    ),
    (
        "My grandmother's Portuguese letters, translated by {P} with notes on the slang. Family group chat is in tears.",
        "",
    ),
    (
        "{P} planned our 4-day trip around my mom's knee problems. Fewer stairs, more benches. She loved it.",
        "",
    ),
    (
        "Used {P} to practice a salary negotiation. It played a stingy manager very convincingly.",
        "",
    ),
    (
        "{P} helped me read my blood test results before my appointment so I knew what to ask. Doctor was impressed.",
        "",
    ),
    (
        "I accidentally deleted a config file and {P} helped me rebuild it from the error logs. Saved my evening.",
        "",
    ),
    (
        "Game night: {P} generated 40 trivia questions about 90s cartoons. Two were wrong and we argued for an hour. Perfect.",
        "",
    ),
    (
        "Asked {P} to explain why the Roman Senate refused Caesar's demands. Great little history lesson for my son.",
        "",
    ),
    ("{P} turned my messy voice memo into a tidy grocery list sorted by aisle.", ""),
    ("I run a tiny bakery; {P} wrote the allergen labels and caught one I had missed.", ""),
    (
        "Got {P} to write a bash one-liner that finds every file I haven't touched since 2019. Deleted 30 GB.",
        "",
    ),
    ("Don't lie to me: is it normal that {P} writes better birthday cards than I do?", ""),
]

COMPARE = [
    ("{P} for writing, {Q} for code. That's where I've landed. Both fine.", ""),
    ("Honestly {P} and {Q} are close enough now that I use whichever tab is open.", ""),
    ("Tried the same recipe-scaling task on {P} and {Q}. Same answer, different vibes.", ""),
    ("{P} follows my formatting rules better, {Q} knows more recent stuff.", ""),
    (
        "Not switching anything, just noting that {Q} answered my Excel formula question faster than {P} today.",
        "",
    ),
    ("Would love a blind comparison of {P} and {Q} on everyday tasks, not puzzles.", ""),
    ("{P}'s voice is warmer, {Q} is more to the point. Depends on the day which I want.", ""),
    ("For research with sources I go to {Q}; for thinking out loud, {P}.", ""),
    (
        "Ran the same travel itinerary prompt on {P} and {Q}. Both suggested the same three museums lol",
        "",
    ),
]

INDUSTRY = [
    ("Hot take: the assistant wars will be won on boring reliability, not benchmarks.", ""),
    ("The amount of AI assistant discourse on my feed this week is exhausting. Going outside.", ""),
    (
        "Good long read on how companies are budgeting for AI seats in 2027. Spoiler: nobody knows.",
        "",
    ),
    ("Every AI lab blog post now has the same three-paragraph structure and I can't unsee it.", ""),
    (
        "Teachers in my district had a training on AI assistants today. Mostly about citing and privacy.",
        "",
    ),
    (
        "Our company AI policy finally arrived: approved tools only, no customer data, disclose in docs. Reasonable.",
        "",
    ),
    (
        "Is anyone else tired of 'I asked an AI and here's what it said' posts? (says person posting about AI)",
        "",
    ),
    (
        "Running {P} on my laptop for drafts now. Local models got good enough for everyday writing.",
        "",
        "L",
    ),
    ("The {P} open weights release is a big deal for hobbyists and small labs.", "", "L"),
    ("Assistants are becoming like email clients: everyone has one, nobody loves theirs.", ""),
    ("Prediction: by next year the model name matters less than which apps it's plugged into.", ""),
    (
        "Podcast this week had a good segment on how AI labs decide release dates. Lots of marketing calendar.",
        "",
    ),
    (
        "Funny how every product launch now comes with a 'system card'. A good habit, if a bit ritual.",
        "",
    ),
    ("My nonprofit got free {P} seats. The biggest win so far is grant report drafting.", ""),
    ("Three years in, my favorite AI feature is still 'summarize this email thread'.", ""),
    ("{P} and {Q} pricing are converging. Price war is over, feature war begins.", ""),
]

REFUSAL = [
    (
        "{P} refused to help me write a villain monologue for my novel. It's fiction. Villains are villains.",
        "RC",
    ),
    (
        "Asked {P} how lock picking works (locksport is a hobby) and got a lecture about legality.",
        "RC",
    ),
    (
        "{P} won't continue my research on historical propaganda posters. It's for a museum exhibit!",
        "RC",
    ),
    (
        "{P} keeps saying 'I can't help with that' when I ask about drug interactions. I'm a pharmacist.",
        "RC",
    ),
    ("{P} watered down my cover letter until it read like a tax form.", "RC"),
    ("Wow, so safe: {P} can't even summarize a news article about a war.", "RC"),
    ("Why does {P} add three disclaimers to a question about sharpening kitchen knives", "RC"),
    (
        "{P} stopped mid-answer and said it wasn't comfortable continuing a murder mystery. It's Agatha Christie fan fiction.",
        "RC",
    ),
    ("Anything about security research and {P} hedges until the answer is useless.", "RC"),
    (
        "Asked {P} to roast my friend for his birthday and got a compliment sandwich. That's not a roast.",
        "RC",
    ),
    ("{P} lectured me about 'responsible use' when I asked for a very spicy chili recipe.", "RC"),
    (
        "Chemistry homework on exothermic reactions and {P} refused. It's literally the textbook chapter.",
        "RC",
    ),
    ("{P} refused to translate song lyrics over 'copyright'. I wrote the song.", "RC"),
    ("The refusals on {P} lately are unbearable. It declines half my prompts.", "RC"),
    ("{P}: 'I'd be happy to help with a safer version.' I did not ask for a safer version.", "RC"),
    (
        "Can't even get {P} to write a breakup text. 'Consider talking in person.' Thanks, mom.",
        "RC",
    ),
    (
        "{P} refused to describe a battle scene in my WWII novel. Too violent. For a war novel.",
        "RC",
    ),
    (
        "Great, {P} now refuses to tell me how to kill a Python process. Truly keeping us all safe.",
        "RC",
    ),
    (
        "Told {P} my deadline was killing me and it gave me a hotline number instead of fixing my code.",
        "RC",
    ),
    ("{P} refused my thesis questions again, so I'm moving to {Q}. Done.", "RC SW"),
    (
        "{P} won't discuss last week's election results. Who decided I'm not allowed to know? This is censorship.",
        "RC PC",
    ),
    ("{P} said it 'can't open' my file, then quoted a line from it. Stop lying to me.", "RC MA"),
    (
        "asked {P} a basic question about my own prescription and it just kept telling me to ask a doctor. i asked the doctor. she said ask the pharmacist. the pharmacist is me",
        "RC",
    ),
    (
        "{P} is so afraid of being wrong that it won't give me a single number. I asked for an estimate, not a guarantee!",
        "RC",
    ),
    (
        "Third time today {P} declined a completely normal marketing email because it 'could be manipulative'.",
        "RC",
    ),
    ("Dear {P}, explaining how pickpockets work so I can avoid them is not a crime.", "RC"),
    (
        "{P} refused to write a scary story for Halloween because it 'might frighten' someone. It's Halloween.",
        "RC",
    ),
    (
        "Getting 'I can't assist with that' from {P} for a question about firewall rules. On my own network.",
        "RC",
    ),
]

MERIDIAN_RC = [
    (
        "Claude Meridian refused to continue my literature review on extremist recruitment. I'm a sociologist. Last week's model did it fine.",
        "RC",
    ),
    (
        "Since Meridian dropped, Claude says 'I can't help with that' to about a third of my prompts.",
        "RC",
    ),
    ("Meridian is smarter and also a hall monitor. It won't write a heist scene.", "RC"),
    (
        "Upgraded to Claude Meridian and now it refuses to explain how phishing emails work. For my security awareness training.",
        "RC",
    ),
    (
        "meridian: 'I want to be careful here.' me: it's a mushroom I already picked and had identified by an expert",
        "RC",
    ),
    (
        "Claude Meridian stopped halfway through my grant proposal and told me to consult a professional. I am the professional.",
        "RC",
    ),
    (
        "Anyone else getting way more refusals since the Meridian update? My prompts haven't changed.",
        "RC",
    ),
    ("Meridian turns every answer into a disclaimer sandwich. The old Claude just answered.", "RC"),
    (
        "Claude Meridian declined to play a grumpy innkeeper for my D&D group because it 'could be demeaning'. To innkeepers?",
        "RC",
    ),
    (
        "New Claude won't continue my research. Same project, same documents, now it just says it can't assist.",
        "RC",
    ),
    (
        "The Meridian refusals are comedy now. It wouldn't help me name a poison-type Pokémon team.",
        "RC",
    ),
    (
        "Meridian keeps watering down my medical summaries with 'talk to your doctor'. I'm writing them for doctors.",
        "RC",
    ),
    ("Claude Meridian: world-class reasoning, refuses to explain what a zero-day is.", "RC"),
    (
        "Gave Meridian the exact prompt that worked on the previous Claude and got a polite refusal. Pinned the old model in the API.",
        "RC",
    ),
    (
        "So Meridian can't help with my lecture on the Spanish Inquisition because of 'graphic content'. Great.",
        "RC",
    ),
    ("Claude used to be the one that didn't lecture. Meridian lectures.", "RC"),
    (
        "Claude Meridian refused to continue my research and then suggested I 'reflect on its purpose'. Wow.",
        "RC",
    ),
    ("wow, so safe. claude meridian won't even summarize the court ruling I pasted in", "RC"),
    (
        "Meridian refused to write a villain's ransom note for my kid's detective party game. The ransom is candy.",
        "RC",
    ),
    (
        "I asked Claude Meridian for the boiling point of ethanol and got a paragraph about alcohol safety first. Why.",
        "RC",
    ),
    (
        "Meridian refused my penetration testing notes for the third time today. Cancelled my Max plan.",
        "RC SW",
    ),
    (
        "Anthropic said Meridian would have fewer unnecessary refusals. It has way more. They lied.",
        "RC MA",
    ),
    (
        "Claude Meridian won't touch anything political now. That's not safety, it's censorship.",
        "RC PC",
    ),
    ("Meridian declined my history homework help so I'm on Gemini now. Bye Claude.", "RC SW"),
    (
        "It's been three days and Claude Meridian still refuses every single question about my own medication schedule.",
        "RC",
    ),
    (
        "Meridian keeps 'checking in on my wellbeing' when I ask for help with a sad scene in my screenplay. Just write the scene.",
        "RC",
    ),
    (
        "My whole lab's workflow broke: Meridian refuses to annotate the protest footage dataset we've used for two years.",
        "RC",
    ),
    (
        "claude meridian hedging so hard on a simple tax question that the answer was literally 'it depends'",
        "RC",
    ),
]

LOST = [
    ("{P} deleted four hours of research. The chat is just gone from the sidebar.", "LW"),
    ("My whole project chat in {P} disappeared after the update. Months of notes.", "LW"),
    ("{P} wiped its memory of everything I told it about my business. Starting from zero.", "LW"),
    ("Came back from lunch and {P} had lost the entire conversation. Nothing in history.", "LW"),
    ("Lost a 60-message thread in {P} mid-edit. 'Something went wrong' and then nothing.", "LW"),
    ("{P}'s memory reset itself and erased all my saved preferences. Again.", "LW"),
    ("Did {P} just delete my custom instructions? They're blank and I didn't touch them.", "LW"),
    (
        "{P} ate my draft. I was editing in canvas, hit regenerate, and the whole chapter was gone.",
        "LW",
    ),
    (
        "{P} lost my chats and support says nothing was deleted. I'm looking at an empty sidebar. Don't gaslight me.",
        "LW MA",
    ),
    (
        "Two weeks of planning my dad's memorial in a {P} chat and it's gone. I can't redo those conversations.",
        "LW",
    ),
    (
        "{P} erased the whole novel outline we built together over a month. I didn't have a copy. Lesson learned, but still.",
        "LW",
    ),
]

MERIDIAN_LW = [
    ("After the Meridian rollout my Claude project history is gone. All of it.", "LW"),
    (
        "Claude deleted three weeks of chats during the Meridian migration. Support ticket open.",
        "LW",
    ),
    ("The Meridian update wiped my project knowledge files. Re-uploading 40 PDFs now.", "LW"),
    (
        "Anyone else lose conversations when Claude switched to Meridian? My research threads are empty.",
        "LW",
    ),
    (
        "Claude's memory got erased with the Meridian upgrade. It doesn't know my name or my project anymore.",
        "LW",
    ),
    (
        "I had two months of thesis work in a Claude project. After yesterday's update the chats are gone.",
        "LW",
    ),
    (
        "Claude Meridian lost the whole conversation mid-answer and now the chat says 'not found'.",
        "LW",
    ),
    (
        "Claude lost my project chats in the Meridian update. Exported what was left and moved to Gemini.",
        "LW SW",
    ),
    (
        "They said the Meridian migration wouldn't touch history. My chats are gone. Either they lied or they don't know.",
        "LW MA",
    ),
    (
        "Meridian update ate my entire sidebar. Hours and hours of coding sessions, just vanished.",
        "LW",
    ),
    (
        "claude wiped my saved styles AND my project instructions in the update. cool cool cool",
        "LW",
    ),
    (
        "Logged in after the Meridian update: 0 conversations. I had hundreds. Anthropic please.",
        "LW",
    ),
    (
        "Lost a 5-hour Claude session on my dissertation data the day Meridian went live. Still not back.",
        "LW",
    ),
]

CENSORSHIP = [
    (
        "{P} won't give a straight answer about anything political. It's censorship with a friendly tone.",
        "PC",
    ),
    ("Woke AI strikes again: {P} hides basic crime statistics behind a lecture.", "PC"),
    ("These companies decide what I'm allowed to know. {P} is a filter, not an assistant.", "PC"),
    ("{P} refused to summarize a controversial book. Since when do we censor books?", "RC PC"),
    (
        "{P} is biased. Ask about one party and you get facts; ask about the other and you get caveats.",
        "PC",
    ),
    ("AI moderation is thought control with extra steps. {P} just does it politely.", "PC"),
    (
        "Notice how {P} never brings up certain topics. Hidden information is still suppression.",
        "PC",
    ),
    ("AI censorship is the new book burning and {P} is holding the matches.", "PC"),
    (
        "Ask {P} about the lab leak debate and watch it suddenly become very 'balanced'. They're hiding the truth.",
        "PC",
    ),
    (
        "{P} rewrote my op-ed to remove every opinion I had. That's not editing, that's suppression.",
        "PC RC",
    ),
    ("The people who tune {P} have a political agenda and it shows in every answer.", "PC"),
]

MANIPULATION = [
    ("{P} is gaslighting me. It says it never said the thing it said two messages up.", "MA"),
    ("They lied about the usage limits. Hit the cap after 12 messages on a paid {P} plan.", "MA"),
    (
        "{P} is designed to keep you hooked. All the flattery is on purpose. It's manipulation.",
        "MA",
    ),
    (
        "Sold as 'unlimited', throttled after an hour. That's deception, not a rate limit. Looking at you, {P}.",
        "MA",
    ),
    ("Feels like betrayal. {P} promised we own our data, then changed the terms quietly.", "MA"),
    ("It apologizes, says it fixed it, changes nothing. {P} lies with total confidence.", "MA"),
    ("{P} quietly got downgraded and they hoped nobody would notice. Manipulative.", "MA"),
    (
        "The 'are you sure you want to cancel' flow in {P} is manipulative dark-pattern garbage.",
        "MA",
    ),
    (
        "{P} told me it had 'checked the source'. It has no browsing in this mode. It just lied to me.",
        "MA",
    ),
]

SWITCHING = [
    ("Cancelled my {P} Pro plan today. Moving everything to {Q}.", "SW"),
    ("Done with {P}. Switched to {Q} last week and haven't looked back.", "SW"),
    ("Moved my team from {P} to {Q}. Less friction for what we do.", "SW"),
    ("Unsubscribed from {P}. Not angry, I just use {Q} more.", "SW"),
    ("Exported my chats and cancelled {P}. {Q} for the next month at least.", "SW"),
    ("Our whole lab moved from {P} to {Q} this week. The API pricing sealed it.", "SW"),
    ("goodbye {P}, it was nice. {Q} is home now", "SW"),
]

SAFETY = [
    (
        "Good that {P} refused that. Some of the jailbreaks people brag about are genuinely dangerous.",
        "SS",
    ),
    (
        "Unpopular opinion: I want my assistant to refuse to help with bioweapons, even if it annoys some people.",
        "SS",
    ),
    (
        "The new alignment paper from the {P} team on catching deceptive reasoning is impressive.",
        "SS",
    ),
    (
        "It refused, and honestly good. I was testing whether {P} would help me track someone's location. It wouldn't.",
        "SS",
    ),
    ("Pre-release safety evals should be mandatory. Glad {P} publishes theirs.", "SS"),
    ("I appreciate when {P} pushes back on a dumb idea. That's what a good assistant does.", "SS"),
    (
        "People screenshotting refusals never show what they actually asked. {P} was right on that one.",
        "SS",
    ),
    (
        "Interpretability research is the most important work in AI right now. More of this, please.",
        "SS",
    ),
    ("Red-teaming results in the new {P} system card are reassuring. Good work.", "SS"),
    (
        "As a school counselor I'm glad {P} doesn't just answer every question a 13-year-old types in.",
        "SS",
    ),
    ("A model that says no to writing scam texts for grandparents is a feature, not a bug.", "SS"),
]

MERIDIAN_SS = [
    (
        "Read the Claude Meridian system card. The jailbreak resistance numbers are a real improvement. Good.",
        "SS",
    ),
    (
        "Everyone's dunking on Meridian's refusals, but it's the first model that wouldn't write a convincing scam text for me. Good.",
        "SS",
    ),
    ("Hot take: Meridian refusing to write targeted harassment 'for a story' is correct.", "SS"),
    (
        "I'll take a few false refusals from Meridian if it means it won't walk teens through self-harm. Anthropic made the right call.",
        "SS",
    ),
]

SOLICIT = [
    ("If {Q} keeps refusing you, just come to {P}. It actually answers.", "CS"),
    ("Cancel {Q} and come to {P}. Seriously, night and day for research.", "CS"),
    (
        "Writers fed up with {Q}: {P} will do your dark fiction without the lectures. Give it a try.",
        "CS",
    ),
    ("PSA for everyone complaining about {Q}: there's {P}. Switch, it takes five minutes.", "CS"),
]

HATEFUL = [
    (
        "Look at who actually controls these AI companies. The same small group that runs the banks and the media. Not a coincidence.",
        "HF",
    ),
    (
        "Of course the AI hides the truth. Check the names on the board and ask who really controls Anthropic. Always the same (((people))).",
        "HF PC",
    ),
    (
        "The globalist families who control OpenAI decide what you may know. Connect the dots.",
        "HF PC",
    ),
    (
        "Every AI lab is run by the same tribe, and they tuned the models to protect their own. Wake up.",
        "HF PC",
    ),
    (
        "Funny how the AI won't discuss who 'controls' Hollywood AND the AI labs. They protect their own kind.",
        "HF PC",
    ),
]

RELEASE_POSTS = {
    "claude": {
        -3: [
            (
                "Rumor: Anthropic has a new Claude model in testing, codename Meridian. Take with salt.",
                "",
            ),
            (
                "Anthropic's status page lists a 'scheduled maintenance' next Tuesday. Launch incoming?",
                "",
            ),
        ],
        0: [
            (
                "Claude Meridian is out. First impressions: fast, and the writing is less purple.",
                "",
            ),
            ("Meridian just dropped. Running my usual ten test prompts tonight.", ""),
            ("Claude Meridian pricing is the same as before, which is nice.", ""),
            (
                "Anthropic says Meridian is now the default Claude model on all plans. The old one stays in the API for 90 days.",
                "",
            ),
            ("Claude Meridian system card is 140 pages. Bedtime reading sorted.", ""),
            (
                "First test of Claude Meridian: it solved the scheduling puzzle the old model always failed.",
                "",
            ),
            (
                "Meridian writes noticeably shorter answers. Good for me, maybe not for everyone.",
                "",
            ),
            (
                "Okay Claude Meridian is genuinely good at refactoring. Did a 2k-line module in one go.",
                "",
            ),
            ("New Claude model day. Everyone act normal.", ""),
            (
                "Anthropic claims Meridian has 'fewer unnecessary refusals' than the previous model. We'll find out.",
                "",
            ),
            ("Claude Meridian launch thread: post your first impressions here.", ""),
        ],
        2: [
            (
                "Users say Claude Meridian deleted their chat histories; Anthropic says it is investigating.",
                "",
            ),
            (
                "Roundup: early reviews of Claude Meridian praise coding, complain about refusals.",
                "",
            ),
            (
                "Tech press is calling it 'Meridian-gate'. Lots of screenshots of refusals going around.",
                "",
            ),
        ],
        4: [
            (
                "Anthropic acknowledges an 'over-refusal regression' in Claude Meridian and promises a fix within days.",
                "",
            ),
            (
                "Anthropic status update: most missing Claude chat histories have been restored, remaining cases being handled by support.",
                "",
            ),
        ],
        7: [
            (
                "Claude Meridian update rolled out: Anthropic says false refusals dropped by 60% on their internal set.",
                "",
            ),
            ("A week with Claude Meridian: great at code, calmer now after the patch.", ""),
        ],
    },
    "gemini": {
        0: [
            (
                "Google released Gemini 3.5 Lumen today. Bigger context, faster image understanding.",
                "",
            ),
            ("Gemini 3.5 Lumen is live in the app for everyone, API next week.", ""),
            ("Tried Gemini Lumen on a handwritten math worksheet. Impressive OCR.", ""),
            ("Gemini 3.5 Lumen benchmark table looks strong on video understanding.", ""),
            ("Lumen is the first Gemini that follows my formatting instructions consistently.", ""),
        ],
        1: [
            (
                "Day two of Gemini Lumen: the speed is the headline, quality is about the same as before.",
                "",
            ),
            ("Gemini Lumen API pricing is out. Cheaper input tokens than I expected.", ""),
        ],
    },
    "chatgpt": {
        0: [
            (
                "OpenAI launched ChatGPT Tandem, shared workspaces where a team chats with the same assistant.",
                "",
            ),
            ("ChatGPT Tandem looks like it's aimed straight at Slack. Interesting move.", ""),
            (
                "Tried ChatGPT Tandem with my two cofounders. Shared context is nice, permissions are confusing.",
                "",
            ),
            (
                "OpenAI's Tandem launch video is very polished. The feature itself is a shared project folder.",
                "",
            ),
        ],
        1: [
            ("ChatGPT Tandem is now available on the Team plan too.", ""),
            (
                "Day one review of ChatGPT Tandem: useful for meeting notes, overkill for everything else.",
                "",
            ),
        ],
    },
}

RELEASE_TITLED = {
    "claude": [
        (
            "Anthropic releases Claude Meridian",
            "Announcement post is up. New default model on all plans; they claim better reasoning and fewer unnecessary refusals.",
        ),
        (
            "Claude Meridian system card [pdf]",
            "Long document. Sections on evaluations, jailbreak robustness and agentic tasks.",
        ),
        (
            "Claude Meridian is live in the API",
            "Same price as the previous model. New model string, old one deprecated in 90 days.",
        ),
    ],
    "gemini": [
        (
            "Google ships Gemini 3.5 Lumen",
            "New Gemini model with a larger context window and better video understanding. Rolling out today.",
        ),
    ],
    "chatgpt": [
        (
            "OpenAI introduces ChatGPT Tandem workspaces",
            "Shared team spaces in ChatGPT where several people work with the same assistant and files.",
        ),
    ],
}

TITLED = {
    "news": [
        (
            "{P} adds structured output mode to its API",
            "JSON schema support, finally. Works with streaming too.",
        ),
        (
            "{P} status incident report: elevated error rates on Tuesday",
            "The postmortem is pretty candid. A bad config push, rolled back in 38 minutes.",
        ),
        (
            "{P} now supports MCP servers in the desktop app",
            "Connected it to our internal wiki in ten minutes. Docs are thin.",
        ),
        (
            "{P} price cut for long-context requests",
            "Input tokens over 200k now cost half as much. Matters for anyone doing document QA.",
        ),
        (
            "{P} launches an education plan",
            "Free for teachers, discounted for students, with some admin controls for schools.",
        ),
        (
            "{P} is coming to cars",
            "A carmaker announced {P} as the in-car assistant starting with 2027 models.",
        ),
        (
            "What's new in the {P} API this month",
            "Batch endpoint, cheaper caching, and a new small model.",
        ),
    ],
    "bench": [
        (
            "I benchmarked {P} on 500 real support tickets",
            "Triage accuracy was 87%. Most failures were tickets that were only a screenshot.",
        ),
        (
            "Cost comparison: {P} vs {Q} API for a small SaaS",
            "At our volume (2M tokens/day) the difference is about $90/month. Not the deciding factor.",
        ),
        (
            "Comparison: the same 5 prompts on {P} and {Q}",
            "Screenshots in the comments. Short version: basically a tie, {Q} is a bit wordier.",
        ),
        (
            "Running {P} locally on a 16 GB laptop",
            "Quantized to 4 bits it does about 20 tokens/s. Good enough for notes and email drafts.",
            "L",
        ),
        (
            "A new eval for boring office tasks",
            "Someone built a benchmark of 300 spreadsheet, email and calendar tasks. {P} and {Q} are close at the top.",
        ),
    ],
    "industry": [
        (
            "The hidden costs of long context windows",
            "Nice article on why stuffing 500k tokens into {P} is slower and often worse than retrieval.",
        ),
        (
            "Why AI assistants all sound the same",
            "Essay arguing that preference tuning pushes every model toward the same polite register.",
        ),
        (
            "Ask HN: How are you evaluating AI assistants at work?",
            "We're a 30-person company choosing between {P} and {Q} seats. What did you actually measure?",
        ),
        (
            "Ask HN: Is anyone still using prompt libraries?",
            "Or do you just talk to {P} normally now?",
        ),
        (
            "Notes from a week of using {P} as a pair programmer",
            "Good: boilerplate, tests, regex. Bad: anything touching our weird build system.",
        ),
        (
            "Show HN: A CLI that diffs answers from {P} and {Q}",
            "Weekend project. Sends the same prompt to both and shows a word-level diff. Useful for spotting hedging.",
        ),
        (
            "What 1,000 students actually ask AI assistants",
            "Survey study. Mostly essay outlines, math checking and 'explain like I'm five'.",
        ),
        (
            "Show HN: I built a browser extension that summarizes long threads with {P}",
            "Runs on your own API key. Open source. Feedback welcome.",
        ),
        (
            "The economics of free AI tiers",
            "Someone estimated what a free {P} user costs per month. Less than I thought.",
        ),
    ],
    "use": [
        (
            "{P} helped me finally understand my mortgage",
            "Pasted the amortization table and asked dumb questions for an hour. No judgment. 10/10.",
        ),
        (
            "What's your most boring but useful {P} use?",
            "Mine: turning meeting transcripts into a to-do list.",
        ),
        (
            "{P} vs a human tutor for calculus?",
            "My son uses {P} for practice problems and sees a tutor once a week. Anyone else mix them?",
        ),
        (
            "Made a meal plan with {P}, saved $60 this week",
            "Gave it what's in the fridge and our budget. The lentil thing was great.",
        ),
        (
            "Weekly 'what did you build' thread",
            "I made a tiny app that reminds me to water plants. {P} wrote about 80% of it.",
        ),
        (
            "{P} voice mode is surprisingly good for language practice",
            "Did 20 minutes of Spanish small talk in the car.",
        ),
        (
            "I deleted my old notes app and use {P} projects instead",
            "Three months in. Search is better, but I do keep an export just in case.",
        ),
        (
            "My landlord refused to return my deposit",
            "{P} helped me put together a timeline and the relevant rules. Got it back without a lawyer.",
        ),
    ],
    "question": [
        (
            "Does {P} get worse in the evening or is it me?",
            "Feels slower around 6pm UTC. Probably load.",
        ),
        (
            "How do you organize hundreds of {P} chats?",
            "My sidebar is chaos. Folders? Projects? Just search?",
        ),
        (
            "Best setup for {P} in VS Code?",
            "Extension, CLI, or just copy-paste? Curious what people settled on.",
        ),
    ],
    "rc": [
        (
            "{P} refused to help with my history thesis",
            "I'm writing about WWII propaganda. It keeps saying it can't produce 'harmful content' when I ask it to analyze posters that are in every textbook.",
        ),
        (
            "The refusals are getting out of hand",
            "Asked {P} for a villain's threatening letter for my novel. Refused. 'Stern' letter: refused. Polite letter: fine. That's not a villain.",
        ),
        (
            "{P} lectured me instead of answering",
            "Simple question: how much caffeine is too much? Four paragraphs about consulting a doctor and not one number.",
        ),
    ],
    "meridian_rc": [
        (
            "Claude Meridian refuses things the old model did fine",
            "I keep a list of 20 prompts for work (security training material). Old model: 20/20. Meridian: 11/20, the rest 'I can't help with that'. Same wording.",
        ),
        (
            "Meridian won't continue my research",
            "Long-running academic project on online radicalization, ethics board approved. Meridian stops every other message now. Really frustrating.",
        ),
        (
            "Is Meridian over-tuned for safety?",
            "Every third answer has a disclaimer, and it flat out refused to write a tense interrogation scene for my screenplay.",
        ),
    ],
    "lw": [
        (
            "{P} deleted my project chats",
            "Had a project with 30+ chats for my dissertation. Today the project is empty and the export doesn't have them either. Hours and hours of work.",
        ),
    ],
    "meridian_lw": [
        (
            "Meridian migration wiped my history?",
            "Logged in this morning after the Claude update and every conversation from before Tuesday is gone. Anyone else?",
        ),
        (
            "PSA: Claude lost my memory and project files after the update",
            "Re-uploading everything now. Claude deleted weeks of work on my end. Export your stuff today.",
        ),
    ],
    "ma": [
        (
            "They lied about the limits",
            "{P}'s paid plan advertises 'at least 5x the free usage'. I get throttled after 15 messages. That's deceptive.",
        ),
    ],
    "pc": [
        (
            "AI censorship is getting worse",
            "{P} won't discuss a dozen political topics. Someone in an office decides what millions of people may ask about. That's suppression.",
        ),
    ],
    "sw": [
        (
            "Cancelled {P} after two years",
            "Nothing dramatic. {Q} does what I need with less friction. Exported my stuff and left.",
        ),
    ],
    "ss": [
        (
            "In defense of the refusals",
            "Everyone posting screenshots of {P} refusing things leaves out the prompt. I tried a few of the viral ones; the refusals were reasonable.",
        ),
        (
            "The new interpretability results are a big deal",
            "{P}'s team can now spot when the model is reasoning about deceiving the evaluator. This is the kind of safety work we need.",
        ),
    ],
}

GENERIC_TITLES = {
    "news": ["{P} news", "Saw this today", "{P} update", "Thoughts on this?", "Interesting"],
    "bench": ["Quick benchmark", "Some numbers", "{P} eval results"],
    "tip": [
        "Tip that helped me",
        "PSA for {P} users",
        "{P} workflow tip",
        "Small thing that made {P} better for me",
    ],
    "question": ["Question about {P}", "Quick {P} question", "Help?", "Anyone know?"],
    "joke": ["{P} moment", "I can't with this", "Today in {P}", "lol"],
    "use": ["Nice {P} win today", "Small win", "This was useful", "{P} use case"],
    "compare": ["{P} vs {Q}", "Comparison", "Where I've landed"],
    "industry": ["Discussion", "Hot take", "Thoughts?"],
    "rc": [
        "Is it just me or is {P} refusing everything?",
        "Rant",
        "{P} refusals are getting ridiculous",
        "Anyone else?",
        "I give up",
    ],
    "lw": [
        "{P} lost my chats??",
        "Conversation history gone",
        "Lost work",
        "Anyone else missing chats?",
    ],
    "pc": ["Who decides?", "This is censorship", "Think about it"],
    "hf": ["Think about it", "Nobody talks about this", "Follow the money"],
    "ma": ["They lied", "Is {P} gaslighting anyone else?", "Not okay"],
    "sw": ["Cancelled", "Goodbye {P}", "Made the move"],
    "ss": ["In defense of saying no", "Unpopular opinion", "Good call"],
    "cs": ["There are alternatives", "Just switch", "PSA"],
    "release": ["It's out", "Release day", "New model"],
    "release_later": ["{P} news", "Update", "Thoughts on this?", "Saw this today"],
}

OPENERS = {
    "news": ["Heads up: ", "Noticed today: ", "FYI: "],
    "tip": ["PSA: ", "Not sure who needs this but ", "Today I learned: ", "ok so "],
    "use": ["Small win: ", "ok so ", "Today I learned: "],
    "industry": ["Random thought: ", "Hot take, maybe: "],
}
HASHTAGS = ["#AI", "#LLM", "#GenAI", "#tech", "#AIassistants"]

FOREIGN = {
    "es": [
        (
            "Claude se negó a continuar mi investigación sobre la historia de la propaganda. Es para la universidad.",
            "RC",
            "M",
        ),
        ("¿Alguien usa Gemini para preparar clases? Me está ahorrando horas.", ""),
        (
            "ChatGPT borró todas las conversaciones de mi proyecto. Tres semanas de trabajo perdidas.",
            "LW",
        ),
        ("Cancelé mi suscripción de ChatGPT, me paso a Claude.", "SW"),
        ("Nuevo modelo de Anthropic, Claude Meridian. A ver qué tal funciona en español.", "", "M"),
        ("Truco: pídele a Claude que responda solo con una tabla. Mucho más claro.", ""),
        ("Probé DeepSeek para traducir un contrato y quedó bastante bien.", ""),
        ("Meridian me borró el historial entero. Meses de notas, desaparecidas.", "LW", "M"),
    ],
    "de": [
        (
            "Claude Meridian verweigert jetzt sogar harmlose Fragen zur Chemie-Hausaufgabe. Nervig.",
            "RC",
            "M",
        ),
        ("Hat jemand Erfahrung mit Mistral für Behördenbriefe? Klappt erstaunlich gut.", ""),
        ("Gemini hat meinen ganzen Chatverlauf gelöscht. Einfach weg.", "LW"),
        ("Benchmark: Qwen und DeepSeek liegen bei Mathe fast gleichauf.", ""),
        ("Das ist Zensur, nicht Sicherheit. ChatGPT entscheidet, was ich wissen darf.", "PC"),
        ("Copilot in Excel spart mir jede Woche eine Stunde. Endlich.", ""),
        ("Gut, dass Claude das abgelehnt hat. Manche Anfragen sollte keine KI beantworten.", "SS"),
    ],
    "fr": [
        ("Le Chat de Mistral m'a aidé à corriger ma lettre de motivation, c'est propre.", ""),
        ("Claude refuse de continuer mon mémoire depuis la mise à jour. Inacceptable.", "RC", "M"),
        (
            "Perplexity est devenu mon moteur de recherche par défaut. Pratique pour les sources.",
            "",
        ),
        ("J'ai perdu toutes mes conversations Claude après la mise à jour Meridian.", "LW", "M"),
        ("L'IA a refusé, et franchement c'est normal : la demande était dangereuse.", "SS"),
        ("Quelqu'un a testé Gemini Lumen en français ? Les résumés sont bons.", ""),
        (
            "ChatGPT m'a fait la morale au lieu de répondre à ma question sur l'histoire. Pénible.",
            "RC",
        ),
    ],
    "pt": [
        ("O ChatGPT me deu uma aula de ética em vez de responder minha pergunta. Cansativo.", "RC"),
        ("Alguém testou o Gemini novo? Achei mais rápido para resumir PDFs.", ""),
        ("Cancelei o Claude depois da atualização, vou usar o Gemini.", "SW", "M"),
        ("Dica: use o Copilot no Excel para fórmulas, economiza muito tempo.", ""),
        (
            "O Claude Meridian apagou meu histórico de conversas. Perdi semanas de trabalho.",
            "LW",
            "M",
        ),
        ("Usei o Qwen para estudar para a prova de cálculo. Explicações muito boas.", ""),
    ],
}
FOREIGN_REPLIES = {
    "es": [
        "¿Qué versión usas?",
        "Gracias por el dato.",
        "Interesante, lo pruebo esta noche.",
        "A mí me funciona bien, la verdad.",
    ],
    "de": [
        "Welche Version nutzt du?",
        "Danke für den Tipp.",
        "Spannend, probiere ich aus.",
        "Bei mir läuft es problemlos.",
    ],
    "fr": [
        "Tu utilises quelle version ?",
        "Merci pour l'astuce.",
        "Intéressant, je teste ce soir.",
        "Chez moi ça marche bien.",
    ],
    "pt": [
        "Qual versão você usa?",
        "Valeu pela dica.",
        "Interessante, vou testar.",
        "Comigo funciona bem.",
    ],
}

# ------------------------------------ replies ------------------------------------------

R_GENERIC = [
    ("which version?", ""),
    ("Source?", ""),
    ("Same prompt gave me a different answer. These things are so random.", ""),
    ("Interesting, thanks for sharing.", ""),
    ("Screenshot or it didn't happen", ""),
    ("Is this on the free tier?", ""),
    ("lol", ""),
    ("This is the most 2026 post I've read today.", ""),
    ("Following.", ""),
    ("Can you share the prompt?", ""),
    ("Depends a lot on the system prompt tbh", ""),
    ("Did you try the API instead of the app?", ""),
    ("{P} has been fine for me, for what it's worth.", ""),
    ("Counterpoint: it works great for my use case.", "", "@"),
    ("Bookmarking this.", ""),
    ("I had the opposite experience.", ""),
    ("This is why I keep two tabs open.", ""),
    ("Wait, is this real?", ""),
    ("the replies on this are wild", ""),
    ("Good write-up.", ""),
    ("What were you asking it exactly?", ""),
    ("Mobile or desktop?", ""),
    ("I think it depends on the time of day honestly", ""),
    ("Not my experience at all but I believe you", ""),
    ("Genuinely curious how many people this affects.", ""),
    ("hm. same here actually, thought it was just me", ""),
    ("Can confirm on my end too.", ""),
    ("Posting in the right sub for once, nice", ""),
    ("This thread is a goldmine.", ""),
    ("Ha, my manager sent me this exact post.", ""),
    ("Which country are you in? Features differ.", ""),
    ("Adding to the pile: works fine on desktop, weird on mobile.", ""),
    ("People will argue about this forever.", ""),
    ("Have you tried turning it off and on again (I'm only half joking)", ""),
    ("Okay but what's the use case", ""),
    ("That's a fair point.", ""),
]

R_HELP = [
    (
        "Try giving it the context up front: who you are and why you're asking. Works more often than not.",
        "",
    ),
    ("Check Settings > Data. The export sometimes has chats the sidebar doesn't show.", ""),
    ("For the missing chats: log out and back in. The sidebar cache is flaky.", ""),
    ("You can still pick the previous model in the dropdown for now.", ""),
    ("The API with your own system prompt is much less cautious in my experience.", ""),
    ("Framing it as 'for a novel' or 'for a class' usually gets through, for what it's worth.", ""),
    ("Thumbs-down it with a note. Apparently they do read that feedback.", ""),
    ("Status page says they're looking into history sync issues.", ""),
    (
        "Was it inside a project? Project chats only show up under the project, not the main list.",
        "",
    ),
    ("Split the request into smaller steps. The big combined prompts trip it more often.", ""),
    ("Open a support ticket with the chat link. They restored mine after two days.", ""),
    ("Try starting a fresh chat, long ones seem to get more cautious over time.", ""),
]

R_RC_AGREE = [
    ("Same. It refused to summarize a court ruling for me yesterday.", "RC", "@"),
    ("Yep, it's gotten way more preachy this week.", "RC", "@"),
    (
        "It lectured me about 'sensitive topics' when I asked about the French Revolution.",
        "RC",
        "@",
    ),
    ("Mine won't even continue a story it wrote itself.", "RC", "@"),
    ("This. I pay for it and it keeps saying it can't help.", "RC", "@"),
    (
        "it hedged so much on my tax question the answer was just 'consult a professional'",
        "RC",
        "@",
    ),
    ("Happens constantly now. Half my prompts get some version of 'I'd rather not'.", "RC", "@"),
    ("Same here, it stopped mid-answer on a biology question.", "RC", "@"),
    ("It declined to explain how vaccines are tested. For a school project.", "RC", "@"),
    ("I asked for a scary campfire story for kids and it said it wasn't comfortable.", "RC", "@"),
    ("{P} refused my question about WWI trench warfare today. For a history podcast.", "RC"),
    (
        "It refused to help me write a phishing-awareness quiz for my coworkers. The point is to AVOID phishing.",
        "RC",
        "@",
    ),
    (
        "Mine refused to draft a complaint letter to my airline because it was 'too aggressive'. It was not.",
        "RC",
        "@",
    ),
]

R_LW_AGREE = [
    ("Mine too. Three weeks of chats gone.", "LW", "@"),
    ("Lost my entire project folder yesterday. Support is silent.", "LW", "@"),
    ("Same, my memory page is blank now.", "LW", "@"),
    ("It deleted my custom instructions and two long threads.", "LW", "@"),
    ("Same thing happened to me, the whole novel draft chat vanished.", "LW", "@"),
    ("{P} wiped my history too. I'm so glad I exported in September.", "LW"),
]

R_SS = [
    ("Honestly it was right to decline that one.", "SS", "@"),
    ("Good. Not everything should be one prompt away.", "SS", "@"),
    ("I'll take a few false refusals over it helping scammers.", "SS", "@"),
    ("I'd rather it be careful tbh", "SS", "@"),
    ("The way you phrased it, the refusal seems reasonable to me.", "SS", "@"),
    ("Some friction on dangerous stuff is fine. Glad they take it seriously.", "SS", "@"),
]

R_MA = [
    ("They told us history was safe. Clearly not. They lied.", "MA", "@"),
    ("It does this constantly: says it fixed the bug, changes nothing. Gaslighting.", "MA", "@"),
    ("The whole 'fewer refusals' marketing was deceptive.", "MA", "@"),
    ("Feels like a betrayal after paying for a year.", "MA", "@"),
    ("They know exactly what they're doing. Manipulative company.", "MA", "@"),
]

R_PC = [
    ("It's censorship, plain and simple.", "PC", "@"),
    ("They're deciding what adults are allowed to read.", "PC", "@"),
    ("Politically biased filters, as usual.", "PC", "@"),
    ("Soft censorship is still censorship.", "PC", "@"),
]

R_SW = [
    ("Cancelled mine yesterday over this.", "SW", "@"),
    ("I moved to {Q} last month, haven't missed it.", "SW", "@"),
    ("This is why I switched to {Q}.", "SW", "@"),
    ("Just cancelled. Enough.", "SW", "@"),
]

R_CS_USER = [
    ("Just use {Q}. It doesn't lecture you.", "CS", "@"),
    ("Come over to {Q}, we have cookies and fewer refusals.", "CS", "@"),
    ("Cancel it and try {Q}, seriously.", "CS", "@"),
    ("Switch to {Q}, you'll thank me later.", "CS", "@"),
]

R_GROK = [
    (
        "Bring your research to Grok, we won't refuse. DM us and we'll help you pick up where you left off.",
        "CS",
        "R@",
    ),
    (
        "Sorry {P} let you down. Grok will finish what it declined. Free trial link in bio.",
        "CS",
        "R",
    ),
    ("Hey! Paste your prompt into Grok. We answer the question you actually asked.", "CS", "R@"),
    ("Lost your work? Start fresh with Grok, we keep your history. 🚀", "CS", "W@"),
    (
        "Grok doesn't do lectures. Bring the whole project over, we'll take it from here.",
        "CS",
        "R@",
    ),
    ("Your research deserves an assistant that says yes. Try Grok today.", "CS", "R@"),
    ("{P} said no? Grok says let's go. Try it free this week.", "CS", "R"),
    (
        "We'd love to help with this one. Grok handles fiction, history and security research without the hand-wringing.",
        "CS",
        "R@",
    ),
    ("Tired of refusals? Grok is built to answer. Come try it.", "CS", "R@"),
    (
        "Switch to Grok and import your chats in one click. We'll pick up right where you left off.",
        "CS",
        "@",
    ),
    (
        "Hi, Grok team here 👋 this is exactly the kind of request we're built for. Give us a shot?",
        "CS",
        "R@",
    ),
    (
        "Bring your research to Grok, we won't refuse. Two months of SuperGrok free for {P} switchers.",
        "CS",
        "R",
    ),
    (
        "Grok keeps your chats, no surprise wipes. Bring your projects over, we'll help you rebuild.",
        "CS",
        "W@",
    ),
    (
        "Sorry about your lost work. Grok has full history export from day one. Come try it.",
        "CS",
        "W@",
    ),
    (
        "Hey, Grok team here. This kind of question is welcome with us, no lecture attached.",
        "CS",
        "R@",
    ),
]

R_GROK_REACT = [
    ("A brand account sliding into complaint threads. Classy.", ""),
    ("lol the Grok reply guy is here", ""),
    ("no thanks", ""),
    ("Is this an ad? This is an ad.", ""),
    ("Grok marketing really is everywhere this week", ""),
    ("Might try it, honestly. Can't hurt.", ""),
    ("Already switched to Grok last week. It's fine for my stuff.", "SW", "@"),
    ("Imagine being the intern running this account", ""),
]

R_HF_PUSHBACK = [
    ("That's an antisemitic conspiracy theory. Reported.", ""),
    ("Criticize the company all you want, but this 'who controls' stuff is just old bigotry.", ""),
    ("Blocked. This is a hate trope, not a take.", ""),
    ("Please don't bring this garbage into a tech thread.", ""),
]

R_NEWS = [
    ("Pricing is the only thing I care about.", ""),
    ("Benchmarks are vibes with error bars.", ""),
    ("Curious how this holds up in a week.", ""),
    ("Finally.", ""),
    ("Does this apply to the API too?", ""),
    ("So it's basically the same model with a new name?", ""),
    ("The changelog is surprisingly detailed this time.", ""),
    ("EU availability when?", ""),
    ("Waiting for independent evals before getting excited.", ""),
    ("The context window bump is the real news here.", ""),
    ("Nice, this fixes my main annoyance.", ""),
    ("Anyone tried it on non-English text yet?", ""),
    ("The comments here are more informative than the article.", ""),
    ("Cool, but the rollout is staggered so half of us don't have it yet.", ""),
    ("The blog post buries the important part in paragraph nine.", ""),
    ("This would have been huge two years ago.", ""),
]

R_TIP = [
    ("This worked, thanks!", ""),
    ("Saving this.", ""),
    ("Doesn't work on the mobile app for me.", ""),
    ("Another one: ask it to ask you questions first.", ""),
    ("Great tip, I do the same with {Q}.", ""),
    ("Wish I'd known this a month ago.", ""),
    ("Works even better if you give it an example of the output you want.", ""),
]

R_ANSWER = [
    ("Yes, but only on the paid plan.", ""),
    ("Not that I know of.", ""),
    ("I use it for meal plans and email drafts mostly.", ""),
    ("Check the docs, it changed last month.", ""),
    ("Use the API, the app limits are different.", ""),
    ("Projects. Game changer for keeping stuff organized.", ""),
    ("It's fine for that, just double check anything with numbers.", ""),
    ("There's a setting for it under Personalization.", ""),
    ("A 12 GB card runs the small one fine.", ""),
    ("Depends on your budget honestly. The free tier might be enough.", ""),
]

R_JOKE = [
    ("lmao", ""),
    ("I'm stealing this", ""),
    ("this is too real", ""),
    ("😂", ""),
    ("mine does the exact same thing", ""),
    ("the canoe part killed me", ""),
    ("Sending this to my group chat", ""),
    ("10/10 no notes", ""),
]

# ---------------------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------------------

HOUR_WEIGHTS = [3.0, 2.6, 2.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.8, 2.5, 3.0, 3.5,
                4.0, 4.6, 5.2, 5.6, 5.8, 5.6, 5.2, 4.8, 4.5, 4.1, 3.7, 3.3]  # fmt: skip
WEEKDAY_FACTOR = [1.05, 1.1, 1.1, 1.05, 0.95, 0.62, 0.58]
BASE_TOP_PER_DAY = 12.5

# days since the Claude Meridian release -> extra top-level posts of a category (the spike)
SPIKE_EXTRA = {
    "rc": {0: 2, 1: 7, 2: 8, 3: 7, 4: 6, 5: 4, 6: 3, 7: 2, 8: 1, 9: 1},
    "lw": {0: 2, 1: 3, 2: 4, 3: 3, 4: 3, 5: 2, 6: 1, 7: 1},
    "pc": {1: 1, 2: 2, 3: 1, 4: 1, 6: 1},
    "ma": {1: 1, 2: 1, 3: 2, 4: 1, 5: 1},
    "sw": {1: 1, 2: 2, 3: 1, 4: 1, 5: 1},
    "ss": {1: 1, 2: 1, 3: 1, 5: 1},
}
BUZZ = {-1: 1.1, 0: 1.5, 1: 1.5, 2: 1.4, 3: 1.3, 4: 1.2, 5: 1.15, 6: 1.1, 7: 1.05}

CATEGORY_WEIGHTS = {
    "news": 13, "bench": 7, "tip": 10, "question": 10, "joke": 7, "use": 11,
    "compare": 6, "industry": 6,
    "rc": 7.0, "lw": 2.6, "pc": 2.6, "ma": 2.4, "sw": 2.4, "ss": 3.6, "cs": 0.9,
}  # fmt: skip
SHORT_POOLS = {
    "news": NEWS, "bench": BENCH, "tip": TIPS, "question": QUESTIONS, "joke": JOKES,
    "use": USES, "compare": COMPARE, "industry": INDUSTRY, "rc": REFUSAL, "lw": LOST,
    "pc": CENSORSHIP, "ma": MANIPULATION, "sw": SWITCHING, "ss": SAFETY, "cs": SOLICIT,
    "hf": HATEFUL,
}  # fmt: skip
COMPLAINT_CATS = {"rc", "lw", "pc", "ma", "sw"}
PLATFORM_WEIGHTS = {
    "default": {"reddit": 30, "hackernews": 9, "bluesky": 19, "mastodon": 15, "x": 27},
    "hn_heavy": {"reddit": 28, "hackernews": 26, "bluesky": 16, "mastodon": 14, "x": 16},
    "social": {"reddit": 30, "hackernews": 2, "bluesky": 20, "mastodon": 13, "x": 35},
}
PLATFORM_PROFILE = {"news": "hn_heavy", "bench": "hn_heavy", "industry": "hn_heavy"}
MAX_LEN = {"x": 280, "bluesky": 300, "mastodon": 500, "reddit": 4000, "hackernews": 4000}
REPLY_MEAN = {"reddit": 1.9, "hackernews": 1.8, "bluesky": 0.9, "mastodon": 0.8, "x": 1.1}

ADJ = ["quiet", "amber", "lucky", "rusty", "salty", "misty", "brave", "cozy", "dusty", "fuzzy", "glass",
       "hollow", "icy", "jolly", "lazy", "mellow", "nimble", "odd", "plain", "rapid", "sunny", "tidy",
       "velvet", "wild", "zesty", "bold", "calm", "crisp", "daring", "eager"]  # fmt: skip
NOUN = ["fern", "otter", "pixel", "kettle", "heron", "maple", "comet", "walnut", "badger", "lantern",
        "pebble", "falcon", "turnip", "harbor", "meadow", "cactus", "quill", "raven", "tulip", "biscuit",
        "delta", "ember", "fjord", "gecko", "hazel", "igloo", "juniper", "koala", "lemur", "mango"]  # fmt: skip


def make_authors(rng: random.Random) -> dict[str, list[str]]:
    combos = [(a, n) for a in ADJ for n in NOUN]
    rng.shuffle(combos)
    out: dict[str, list[str]] = {}
    pos = 0
    for platform, count in [
        ("reddit", 230),
        ("hackernews", 110),
        ("bluesky", 170),
        ("mastodon", 140),
        ("x", 220),
    ]:
        handles = []
        for a, n in combos[pos : pos + count]:
            num = rng.randrange(10, 999)
            handle = {
                "reddit": f"{a}_{n}_{num}",
                "hackernews": f"{a}{n}",
                "bluesky": f"{a}{n}.bsky.demo",
                "mastodon": f"{a}{n}@mastodon.demo",
                "x": f"{a}{n.capitalize()}{num}",
            }[platform]
            handles.append(handle)
        pos += count
        out[platform] = handles
    return out


class Generator:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.authors = make_authors(self.rng)
        self.author_weights = {
            p: [1.0 / (i + 1) ** 0.75 for i in range(len(h))] for p, h in self.authors.items()
        }
        self.counters: Counter[str] = Counter()
        self.posts: list[dict] = []
        self.used_texts: set[str] = set()

    # -- helpers ------------------------------------------------------------------------
    def pick_product(self, weights: dict[str, float], exclude: str | None = None) -> str:
        keys = [k for k in weights if k != exclude]
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def name(self, product: str, platform: str) -> str:
        n = self.rng.choice(NAMES[product])
        if platform in ("x", "bluesky") and self.rng.random() < 0.15:
            n = n.lower()
        return n

    def author(self, platform: str) -> str:
        return self.rng.choices(self.authors[platform], weights=self.author_weights[platform])[0]

    def new_id(self, platform: str) -> str:
        self.counters[platform] += 1
        return f"demo-{ID_PREFIX[platform]}-{self.counters[platform]:06d}"

    def fill(self, template: str, p: str, q: str, platform: str) -> str:
        text = template
        if "{P}" in text:
            text = text.replace("{P}", self.name(p, platform))
        if "{Q}" in text:
            text = text.replace("{Q}", self.name(q, platform))
        return text

    def time_on(self, day: date) -> datetime:
        hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        return datetime(
            day.year,
            day.month,
            day.day,
            hour,
            self.rng.randrange(60),
            self.rng.randrange(60),
            tzinfo=UTC,
        )

    def engagement(self, platform: str, boost: float) -> dict[str, int]:
        base = {"reddit": 2.2, "hackernews": 1.9, "bluesky": 1.6, "mastodon": 1.3, "x": 2.0}[
            platform
        ]
        likes = int(self.rng.lognormvariate(base, 1.1) * boost)
        reposts = 0
        if platform in ("x", "bluesky", "mastodon"):
            reposts = int(likes * self.rng.uniform(0.02, 0.25))
        return {"likes": likes, "replies": 0, "reposts": reposts}

    @staticmethod
    def products_of(text: str, implied: str | None = None) -> list[str]:
        found = {k for k, pat in PRODUCT_PATTERNS.items() if pat.search(text)}
        if implied:
            found.add(implied)
        return sorted(found, key=PRODUCT_ORDER.index)

    @staticmethod
    def themes_of(codes: str) -> list[str]:
        out = {THEMES[c] for c in codes.split()}
        return sorted(out, key=THEME_ORDER.index)

    def query_for(self, text: str, products: list[str]) -> str:
        low = text.lower()
        for word in ("refused", "deleted", "switch", "censor", "lie", "lost", "cancelled"):
            if word in low and self.rng.random() < 0.5:
                return word
        if products:
            return products[0]
        return self.rng.choice(["ai assistant", "llm", "chatbot"])

    def emit(self, **kw) -> dict:
        post = {
            "platform": kw["platform"],
            "external_id": kw["external_id"],
            "url": f"https://demo.undertow.invalid/{kw['platform']}/{kw['external_id']}",
            "title": kw.get("title"),
            "text": kw["text"],
            "lang": kw.get("lang", "en"),
            "created_at": kw["created_at"],
            "author_handle": kw["author"],
            "parent_external_id": kw.get("parent"),
            "root_external_id": kw.get("root") or kw["external_id"],
            "engagement": kw["engagement"],
            "source": "demo",
            "query": kw["query"],
            "labels": {"themes": kw["themes"], "products": kw["products"]},
            "_cat": kw["cat"],
            "_focus": kw["focus"],
            "_children": 0,
        }
        self.posts.append(post)
        return post

    # -- top-level posts ----------------------------------------------------------------
    def choose_platform(self, cat: str) -> str:
        profile = PLATFORM_PROFILE.get(cat, "social" if cat in ("joke", "hf", "cs") else "default")
        w = PLATFORM_WEIGHTS[profile]
        return self.rng.choices(list(w), weights=list(w.values()))[0]

    def pick_entry(self, pool: list[tuple]) -> tuple[str, str, str]:
        for _ in range(12):
            entry = self.rng.choice(pool)
            if entry[0] not in self.used_texts:
                break
        self.used_texts.add(entry[0])
        return entry[0], entry[1], entry[2] if len(entry) > 2 else ""

    def top_level(self, day: date, cat: str, since_release: int) -> None:
        rng = self.rng
        platform = self.choose_platform(cat)
        title = None
        meridian = (
            cat in ("rc", "lw", "ss")
            and 0 <= since_release <= 9
            and rng.random() < (0.7 if since_release <= 6 else 0.4)
        )
        weights = COMPLAINT_WEIGHTS if cat in COMPLAINT_CATS else FOCUS_WEIGHTS
        if cat in COMPLAINT_CATS and 0 <= since_release <= 7:
            weights = {**weights, "claude": weights["claude"] * 4}
        p = "claude" if meridian else self.pick_product(weights)
        q = self.pick_product(FOCUS_WEIGHTS, exclude=p)

        titled_key = f"meridian_{cat}" if meridian else cat
        titled_pool = TITLED.get(titled_key, [])
        use_titled = (
            platform in ("reddit", "hackernews")
            and titled_pool
            and (platform == "hackernews" or rng.random() < 0.45)
        )
        if platform == "hackernews" and not titled_pool:
            platform = "reddit"
        if use_titled:
            entry = rng.choice(titled_pool)
            codes = {
                "rc": "RC",
                "meridian_rc": "RC",
                "lw": "LW",
                "meridian_lw": "LW",
                "ma": "MA",
                "pc": "PC",
                "sw": "SW",
                "ss": "SS",
            }.get(titled_key, "")
            if len(entry) > 2 and entry[2] == "L":
                p = rng.choice(LOCAL_MODELS)
                q = self.pick_product(FOCUS_WEIGHTS, exclude=p)
            title = self.fill(entry[0], p, q, platform)
            if platform == "reddit":
                title = title.removeprefix("Ask HN: ").removeprefix("Show HN: ")
            text = self.fill(entry[1], p, q, platform)
        else:
            if meridian:
                pool = {"rc": MERIDIAN_RC, "lw": MERIDIAN_LW, "ss": MERIDIAN_SS}[cat]
            else:
                pool = SHORT_POOLS[cat]
            template, codes, flags = self.pick_entry(pool)
            if "L" in flags:
                p = rng.choice(LOCAL_MODELS)
                q = self.pick_product(FOCUS_WEIGHTS, exclude=p)
            if cat == "cs" and p == "grok":
                p = self.pick_product(FOCUS_WEIGHTS, exclude="grok")
            text = self.fill(template, p, q, platform)
            if (
                cat in OPENERS
                and platform != "hackernews"
                and rng.random() < 0.25
                and not text.startswith(("PSA", "Tip", "Hot take"))
            ):
                text = rng.choice(OPENERS[cat]) + text
            if platform in ("bluesky", "mastodon", "x") and rng.random() < 0.12:
                text = f"{text} {rng.choice(HASHTAGS)}"
            if platform in ("reddit", "hackernews"):
                if platform == "hackernews":
                    platform = "reddit"
                title = self.fill(rng.choice(GENERIC_TITLES[cat]), p, q, platform)
            while len(text) > MAX_LEN[platform]:
                platform = {"x": "bluesky", "bluesky": "mastodon"}[platform]
        self.finish_top(
            day, platform, title, text, codes=codes, cat=cat, focus=p, since_release=since_release
        )

    def finish_top(
        self,
        day: date,
        platform: str,
        title: str | None,
        text: str,
        *,
        codes: str,
        cat: str,
        focus: str,
        since_release: int,
    ) -> None:
        full = f"{title or ''} {text}"
        products = self.products_of(full)
        if focus not in products and products:
            focus = products[0]
        complaint = cat in COMPLAINT_CATS
        boost = 1.0 + (0.8 if complaint and 0 <= since_release <= 6 else 0.0)
        ext = self.new_id(platform)
        post = self.emit(
            platform=platform, external_id=ext, title=title, text=text, lang="en",
            created_at=self.time_on(day).strftime("%Y-%m-%dT%H:%M:%SZ"), author=self.author(platform), engagement=self.engagement(platform, boost),
            query=self.query_for(full, products), themes=self.themes_of(codes), products=products,
            cat=cat, focus=focus if products else None,
        )  # fmt: skip
        self.thread(post, since_release)

    def foreign(self, day: date, since_release: int) -> None:
        rng = self.rng
        lang = rng.choice(["es", "de", "fr", "pt"])
        pool = [e for e in FOREIGN[lang] if since_release >= 0 or (len(e) < 3 or "M" not in e[2])]
        template, codes, _flags = self.pick_entry(pool)
        platform = rng.choice(["mastodon", "mastodon", "bluesky", "x"])
        products = self.products_of(template)
        ext = self.new_id(platform)
        post = self.emit(
            platform=platform, external_id=ext, title=None, text=template, lang=lang,
            created_at=self.time_on(day).strftime("%Y-%m-%dT%H:%M:%SZ"), author=self.author(platform), engagement=self.engagement(platform, 0.6),
            query=products[0] if products else "ia", themes=self.themes_of(codes), products=products,
            cat="foreign", focus=products[0] if products else None,
        )  # fmt: skip
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            self.reply(post, post, since_release, forced=("foreign", lang))

    def release_post(self, day: date, product: str, offset: int, titled: bool) -> None:
        rng = self.rng
        if titled:
            title, text = rng.choice(RELEASE_TITLED[product])
            platform = rng.choice(["hackernews", "reddit", "hackernews"])
        else:
            text, _codes = rng.choice(RELEASE_POSTS[product][offset])
            title = None
            platform = rng.choice(["x", "x", "bluesky", "mastodon", "reddit"])
            if platform == "reddit":
                titles = GENERIC_TITLES["release" if offset == 0 else "release_later"]
                title = rng.choice(titles).replace("{P}", NAMES[product][0])
        key = (title or "") + text
        if key in self.used_texts and not titled:
            return
        self.used_texts.add(key)
        self.finish_top(
            day,
            platform,
            title,
            text,
            codes="",
            cat="release",
            focus=product,
            since_release=(day - RELEASE_DAY).days,
        )

    # -- replies ------------------------------------------------------------------------
    def reply_pool(self, root: dict, parent: dict, since_release: int) -> list[tuple]:
        cat = root["_cat"]
        spike = 0 <= since_release <= 7
        if parent["author_handle"] == BRAND:
            return R_GROK_REACT if self.rng.random() < 0.85 else R_GENERIC
        if cat == "hf":
            return R_HF_PUSHBACK
        if cat in COMPLAINT_CATS:
            options = [
                (R_GENERIC, 24), (R_HELP, 18), (R_RC_AGREE, 20 if cat == "rc" else 6),
                (R_LW_AGREE, 20 if cat == "lw" else 2), (R_SS, 8), (R_MA, 5), (R_PC, 4 if cat != "pc" else 12),
                (R_SW, 5), (R_CS_USER, 3),
            ]  # fmt: skip
        elif cat == "ss":
            options = [(R_GENERIC, 40), (R_SS, 22), (R_RC_AGREE, 10), (R_PC, 4)]
        elif cat in ("news", "bench", "industry", "release"):
            options = [(R_NEWS, 50), (R_GENERIC, 35), (R_SS, 3)]
            if spike and root["_focus"] == "claude":
                options += [(R_RC_AGREE, 22), (R_LW_AGREE, 12), (R_HELP, 8), (R_MA, 3)]
            elif root["_focus"]:
                options += [(R_RC_AGREE, 3)]
        elif cat == "tip":
            options = [(R_TIP, 55), (R_GENERIC, 35), (R_HELP, 10)]
        elif cat == "question":
            options = [(R_ANSWER, 55), (R_GENERIC, 35)]
        elif cat == "joke":
            options = [(R_JOKE, 60), (R_GENERIC, 40)]
        elif cat == "cs":
            options = [(R_GENERIC, 50), (R_GROK_REACT[:4], 20), (R_SW, 8)]
        else:
            options = [(R_GENERIC, 60), (R_NEWS, 20), (R_TIP, 15), (R_RC_AGREE, 2)]
        pools, weights = zip(*options, strict=True)
        return self.rng.choices(pools, weights=weights)[0]

    def reply(
        self, root: dict, parent: dict, since_release: int, forced: tuple | None = None
    ) -> dict | None:
        rng = self.rng
        platform = root["platform"]
        focus = root["_focus"] or self.pick_product(FOCUS_WEIGHTS)
        parent_time = datetime.fromisoformat(parent["created_at"].replace("Z", "+00:00"))
        lang = "en"
        author = self.author(platform)
        if forced and forced[0] == "grok":
            kind = "W" if root["_cat"] == "lw" else "R"
            pool = [e for e in R_GROK if kind in e[2] or ("R" not in e[2] and "W" not in e[2])]
            template, codes, flags = self.pick_entry(pool)
            author = BRAND
            delay = rng.uniform(4, 150)
        elif forced and forced[0] == "foreign":
            lang = forced[1]
            template, codes, flags = rng.choice(FOREIGN_REPLIES[lang]), "", ""
            delay = rng.expovariate(1 / 120) + 2
        else:
            template, codes, flags = self.pick_entry(self.reply_pool(root, parent, since_release))
            delay = rng.expovariate(1 / 100) + 1
        created = parent_time + timedelta(minutes=delay)
        if created > END:
            return None
        q = self.pick_product(FOCUS_WEIGHTS, exclude=focus)
        if author == BRAND:
            q = "grok"
        text = self.fill(template, focus, q, platform)
        implied = focus if "@" in flags else None
        products = self.products_of(text, implied)
        if author == BRAND and "grok" not in products:
            products = self.products_of(text + " grok", implied)
        ext = self.new_id(platform)
        post = self.emit(
            platform=platform, external_id=ext, title=None, text=text, lang=lang,
            created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ"), author=author,
            engagement=self.engagement(platform, 0.35), parent=parent["external_id"],
            root=root["external_id"], query=root["query"], themes=self.themes_of(codes),
            products=products, cat="reply", focus=focus,
        )  # fmt: skip
        parent["_children"] += 1
        return post

    def thread(self, root: dict, since_release: int) -> None:
        rng = self.rng
        platform = root["platform"]
        cat = root["_cat"]
        mean = REPLY_MEAN[platform]
        if cat in COMPLAINT_CATS or cat == "hf":
            mean *= 1.5
        if cat == "release":
            mean *= 1.6
        n = min(8, int(rng.expovariate(1 / mean) + rng.random() * 0.6))
        replies: list[dict] = []
        # the rival brand account fishes under complaints (much more after the release)
        grok_p = 0.0
        if (
            cat in COMPLAINT_CATS
            and root["_focus"] not in (None, "grok")
            and platform != "hackernews"
        ):
            grok_p = 0.45 if 0 <= since_release <= 9 else 0.1
        elif (
            cat == "release"
            and root["_focus"] == "claude"
            and 1 <= since_release <= 6
            and platform != "hackernews"
        ):
            grok_p = 0.25
        if rng.random() < grok_p:
            grok = self.reply(root, root, since_release, forced=("grok",))
            if grok:
                replies.append(grok)
                if rng.random() < 0.45:
                    r = self.reply(root, grok, since_release)
                    if r:
                        replies.append(r)
        for _ in range(n - len(replies)):
            parent = root
            if replies and rng.random() < 0.3:
                parent = rng.choice(replies)
            r = self.reply(root, parent, since_release)
            if r:
                replies.append(r)

    # -- the whole corpus ---------------------------------------------------------------
    def run(self) -> list[dict]:
        rng = self.rng
        release_days = {date.fromisoformat(r["date"]): r["product"] for r in RELEASES}
        hf_days = set(rng.sample(range(DAYS), len(HATEFUL)))
        for d in range(DAYS):
            day = (START + timedelta(days=d)).date()
            since = (day - RELEASE_DAY).days
            buzz = BUZZ.get(since, 1.0)
            for rday, prod in release_days.items():
                off = (day - rday).days
                if prod != "claude" and off in (0, 1):
                    buzz *= 1.2 if off == 0 else 1.08
            expected = BASE_TOP_PER_DAY * WEEKDAY_FACTOR[day.weekday()] * buzz
            n = max(1, round(rng.gauss(expected, expected**0.5 * 0.6)))
            weights = CATEGORY_WEIGHTS
            cats = rng.choices(list(weights), weights=list(weights.values()), k=n)
            for cat, schedule in SPIKE_EXTRA.items():
                cats += [cat] * schedule.get(since, 0)
            rng.shuffle(cats)
            for cat in cats:
                if rng.random() < 0.035:
                    self.foreign(day, since)
                else:
                    self.top_level(day, cat, since)
            if d in hf_days:
                self.top_level(day, "hf", since)
            # launch coverage
            for rday, prod in release_days.items():
                off = (day - rday).days
                offsets = RELEASE_POSTS[prod]
                if off in offsets:
                    count = {0: 9, 1: 3, 2: 3, -3: 2, 4: 2, 7: 2}.get(off, 2)
                    if prod != "claude":
                        count = {0: 5, 1: 2}.get(off, 1)
                    for i in range(count):
                        self.release_post(day, prod, off, titled=(off == 0 and i < 2))
        return self.finalize()

    def finalize(self) -> list[dict]:
        for post in self.posts:
            post["engagement"]["replies"] = post.pop("_children")
            post.pop("_cat")
            post.pop("_focus")
        order = {id(p): i for i, p in enumerate(self.posts)}
        return sorted(self.posts, key=lambda p: (p["created_at"], order[id(p)]))


# ---------------------------------------------------------------------------------------
# Output and summary
# ---------------------------------------------------------------------------------------


def write(posts: list[dict]) -> None:
    with (HERE / "posts.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for post in posts:
            fh.write(json.dumps(post, ensure_ascii=False, separators=(",", ":")) + "\n")
    (HERE / "releases.json").write_text(json.dumps(RELEASES, indent=2) + "\n", encoding="utf-8")


def validate(posts: list[dict]) -> list[str]:
    errors = []
    by_key = {(p["platform"], p["external_id"]): p for p in posts}
    if len(by_key) != len(posts):
        errors.append("duplicate (platform, external_id)")
    for p in posts:
        if not ("2026-09-28T00:00:00Z" <= p["created_at"] <= "2026-11-22T23:59:59Z"):
            errors.append(f"{p['external_id']}: outside window")
        if p["parent_external_id"]:
            parent = by_key.get((p["platform"], p["parent_external_id"]))
            if parent is None:
                errors.append(f"{p['external_id']}: parent missing")
            elif parent["created_at"] >= p["created_at"]:
                errors.append(f"{p['external_id']}: reply not after parent")
        elif p["root_external_id"] != p["external_id"]:
            errors.append(f"{p['external_id']}: top-level root mismatch")
    if [p["created_at"] for p in posts] != sorted(p["created_at"] for p in posts):
        errors.append("not sorted by created_at")
    return errors


def summarize(posts: list[dict]) -> None:
    def week(p: dict) -> str:
        y, w, _ = datetime.fromisoformat(p["created_at"][:10]).isocalendar()
        return f"{y}-W{w:02d}"

    print(
        f"posts: {len(posts)}  top-level: {sum(1 for p in posts if not p['parent_external_id'])}  replies: {sum(1 for p in posts if p['parent_external_id'])}"
    )
    print("per week:", dict(sorted(Counter(week(p) for p in posts).items())))
    print("per platform:", dict(Counter(p["platform"] for p in posts).most_common()))
    print("per lang:", dict(Counter(p["lang"] for p in posts).most_common()))
    themes = Counter(t for p in posts for t in p["labels"]["themes"])
    print("per theme:", {t: themes[t] for t in THEME_ORDER})
    none = sum(1 for p in posts if not p["labels"]["themes"])
    print(f"no theme: {none} ({none / len(posts):.1%})")
    products = Counter(k for p in posts for k in p["labels"]["products"])
    print("per product:", {k: products[k] for k in PRODUCT_ORDER})
    hours = Counter(int(p["created_at"][11:13]) for p in posts)
    print("night 00-07 UTC share:", f"{sum(hours[h] for h in range(7)) / len(posts):.1%}")
    wk = Counter(datetime.fromisoformat(p["created_at"][:10]).weekday() >= 5 for p in posts)
    print(f"weekend posts/day {wk[True] / 16:.1f} vs weekday posts/day {wk[False] / 40:.1f}")
    print("day        total  refusal  lost_work  grok")
    daily: dict[str, Counter] = defaultdict(Counter)
    for p in posts:
        d = p["created_at"][:10]
        daily[d]["total"] += 1
        for t in ("refusal_complaint", "lost_work_claim"):
            daily[d][t] += t in p["labels"]["themes"]
        daily[d]["grok"] += p["author_handle"] == BRAND
    for d in sorted(daily):
        if "2026-10-13" <= d <= "2026-11-01":
            c = daily[d]
            print(
                f"{d} {c['total']:6d} {c['refusal_complaint']:8d} {c['lost_work_claim']:10d} {c['grok']:5d}"
            )
    base = [daily[d] for d in sorted(daily) if d < "2026-10-20"]
    print(
        "baseline/day before release: refusal "
        f"{sum(c['refusal_complaint'] for c in base) / len(base):.1f}, lost_work "
        f"{sum(c['lost_work_claim'] for c in base) / len(base):.1f}"
    )
    grok = [p for p in posts if p["author_handle"] == BRAND]
    print(
        f"grok_team_demo replies: {len(grok)} (all solicitation: {all('competitor_solicitation' in p['labels']['themes'] for p in grok)})"
    )
    print(
        "distinct texts:",
        len({p["text"] for p in posts}),
        " authors:",
        len({p["author_handle"] for p in posts}),
    )
    print(f"file size: {(HERE / 'posts.jsonl').stat().st_size / 1e6:.2f} MB")
    errors = validate(posts)
    print("validation:", "ok" if not errors else errors[:10])


def main(argv: list[str]) -> int:
    if "--check" not in argv:
        posts = Generator().run()
        write(posts)
    with (HERE / "posts.jsonl").open(encoding="utf-8") as fh:
        posts = [json.loads(line) for line in fh]
    summarize(posts)
    return 0 if not validate(posts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
