"""Turning marked-up or tokenized text into clean pt-BR paragraphs.

Markup: HTML and Mallard XML (`markup_paragraphs`), roff man pages (`roff_paragraphs`) and
wrapped plain text (`plain_paragraphs`). Filters: `language_of` (stopword counts, pt vs en)
and `is_clean_paragraph` (drops headings, code and other boilerplate). Tokenized text:
`detokenize` and `recontract` (CoNLL-U `# text` lines that split "do" into "de o").

Example:
    >>> markup_paragraphs("<p>Olá, <b>mundo</b>!</p><pre>ls -l</pre>")
    ['Olá, mundo!']
    >>> detokenize("Ele disse : \\" sim \\" .")
    'Ele disse: "sim".'
"""

from __future__ import annotations

import html.parser
import re

PT_STOPWORDS = frozenset(
    "de que não o os um uma uns umas para com por mais mas como dos das da na nos nas ao aos "
    "à às pela pelo pelas pelos num numa se ser são é está estão foi foram seja sido estar "
    "tem têm ter há era ou quando muito muitos muita muitas já seu sua seus suas este esta "
    "isso isto ele ela eles elas você pode podem deve devem em e sobre entre até ainda depois "
    "sem onde qual quais essa esse nesta neste nessa nesse dessa desse deste desta aqui lhe "
    "então porque mesmo cada tudo todos todas nem só sempre nunca agora vai vamos nosso nossa "
    "meu minha bem também quem sim após desde durante".split()
)
# Words that are common in both languages ("a", "as", "do", "no", "for", "use") are in neither.
EN_STOPWORDS = frozenset(
    "the of and to in is you that it with this are be on by from or an can will not which "
    "your if at have has was were these they their there when also into more only other how "
    "what all then than its would should may must been each such any does but".split()
)

# Portuguese words that are also English ones; they count for Portuguese only when no English
# stopword is present.
_AMBIGUOUS = frozenset("a as do no me for use".split())
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_URL = re.compile(r"\b(?:https?://|www\.)\S+")
_SPACE = re.compile(r"\s+")


def normalize_space(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def remove_urls(text: str) -> str:
    return normalize_space(_URL.sub(" ", text))


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def language_of(text: str) -> str:
    """'pt', 'en' or 'unknown', by counting Portuguese and English stopwords.

    Example:
        >>> language_of("This filter is found in the image window menu")
        'en'
    """
    tokens = words(text)
    pt = sum(t in PT_STOPWORDS for t in tokens)
    en = sum(t in EN_STOPWORDS for t in tokens)
    if en == 0:
        pt += sum(t in _AMBIGUOUS for t in tokens)
    if en > pt and en >= 2:
        return "en"
    if pt > en and pt >= max(1, 0.05 * len(tokens)):
        return "pt"
    return "unknown"


def is_clean_paragraph(text: str, min_words: int = 5) -> bool:
    """Keeps Portuguese prose: enough words, mostly letters, and pt stopwords beating en ones."""
    tokens = words(text)
    if len(tokens) < min_words:
        return False
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters < 0.65 * len(visible):
        return False
    return language_of(text) == "pt"


class _MarkupText(html.parser.HTMLParser):
    """Collects text from HTML/XML; block tags end a paragraph; skipped tags drop their text."""

    def __init__(self, block_tags: frozenset[str], skip_tags: frozenset[str]):
        super().__init__(convert_charrefs=True)
        self.block_tags, self.skip_tags = block_tags, skip_tags
        self._after_key = False
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._skip_depth = 0

    def _flush(self):
        text = normalize_space("".join(self._current))
        if text:
            self.paragraphs.append(text)
        self._current = []

    def handle_starttag(self, tag, attrs):
        if tag in self.skip_tags:
            self._skip_depth += 1
        elif tag in self.block_tags:
            self._flush()
        elif tag == "br":
            self._current.append(" ")
        elif tag == "key" and self._after_key:  # Mallard <keyseq><key>Ctrl</key><key>F</key>
            self._current.append("+")
        self._after_key = False

    def handle_endtag(self, tag):
        if tag in self.skip_tags:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self.block_tags:
            self._flush()
        self._after_key = tag == "key"

    def handle_data(self, data):
        if not self._skip_depth:
            self._current.append(data)
        if data.strip():
            self._after_key = False

    def close(self):
        super().close()
        self._flush()


_HTML_BLOCKS = frozenset(
    "p div li ul ol dl dt dd h1 h2 h3 h4 h5 h6 td th tr table title section article "
    "blockquote caption figcaption".split()
)
_HTML_SKIP = frozenset("head script style pre noscript header footer nav aside button".split())
# Mallard: <info> holds credits/revisions/licence; <screen> and <code> blocks are commands.
_MALLARD_BLOCKS = frozenset(
    "p title subtitle desc item td th tr table section page note list terms steps tree "
    "example quote comment figure listing synopsis".split()
)
_MALLARD_SKIP = frozenset("info screen code media credit license its:rules".split())


def markup_paragraphs(text: str, mallard: bool = False) -> list[str]:
    """Paragraph texts of an HTML page (or a Mallard `.page` with `mallard=True`)."""
    if mallard:
        parser = _MarkupText(_MALLARD_BLOCKS, _MALLARD_SKIP)
    else:
        parser = _MarkupText(_HTML_BLOCKS, _HTML_SKIP)
    parser.feed(text)
    parser.close()
    return parser.paragraphs


_ROFF_CHARS = {
    "em": "—", "en": "–", "aq": "'", "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "dq": '"',
    "bu": "•", "hy": "-", "mi": "-", "co": "©", "rg": "®", "tm": "™", "ga": "`", "ti": "~",
    "ha": "^", "rs": "\\", "sl": "/", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "de": "°",
}
_ROFF_ESCAPE = re.compile(
    r"\\(?:"
    r"\((?P<two>..)"  # \(xx
    r"|\*\((?P<str2>..)|\*\[(?P<strn>[^\]]*)\]|\*(?P<str1>.)"  # strings \*(xx \*[name] \*x
    r"|\[(?P<named>[^\]]*)\]"  # \[name]
    r"|f(?:\(..|\[[^\]]*\]|.)"  # font changes
    r"|s[-+]?\d"  # size changes
    r"|(?P<lit>[-e .])"  # literal minus, backslash, dot, space
    r"|[&|^,/c%:)!]"  # zero-width escapes
    r")"
)
_ROFF_FONT_MACROS = {"B", "I", "SM", "SB"}
_ROFF_ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}
_ROFF_BREAKS = {"SH", "SS", "PP", "P", "LP", "TP", "IP", "HP", "RS", "RE", "sp", "TQ", "SY"}


def _roff_escape(match: re.Match) -> str:
    for group in ("two", "str2", "strn", "str1", "named"):
        name = match.group(group)
        if name is not None:
            return _ROFF_CHARS.get(name, "")
    lit = match.group("lit")
    if lit is None:
        return ""
    return {"-": "-", "e": "\\", " ": " ", ".": "."}[lit]


def _roff_args(rest: str) -> list[str]:
    rest = _ROFF_ESCAPE.sub(_roff_escape, rest)
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', rest)]


def roff_paragraphs(text: str) -> list[str]:
    """Paragraph texts of a roff man page: macros and font escapes removed, `.nf`/`.EX`
    examples and `.TP` tags dropped.

    Example:
        >>> roff_paragraphs('.SH NOME\\nls \\\\- lista\\n.PP\\nO \\\\fBls\\\\fP lista arquivos.')
        ['NOME', 'ls - lista', 'O ls lista arquivos.']
    """
    paragraphs: list[str] = []
    current: list[str] = []
    in_example = False
    tag_next = False

    def flush():
        joined = normalize_space(" ".join(current))
        if joined:
            paragraphs.append(joined)
        current.clear()

    for line in text.splitlines():
        line = re.sub(r'\\".*', "", line)
        if line[:1] in (".", "'"):
            name, _, rest = line[1:].strip().partition(" ")
            if name in ("nf", "EX"):
                flush()
                in_example = True
            elif name in ("fi", "EE"):
                in_example = False
            elif in_example:
                continue
            elif name in _ROFF_BREAKS:
                flush()
                tag_next = name in ("TP", "TQ")
                if name in ("SH", "SS") and rest.strip():
                    paragraphs.append(normalize_space(" ".join(_roff_args(rest))))
            elif name in _ROFF_FONT_MACROS or name in _ROFF_ALTERNATING:
                if tag_next:  # `.TP` then `.B \-R`: the macro line is the tag
                    tag_next = False
                    continue
                joiner = " " if name in _ROFF_FONT_MACROS else ""
                current.append(joiner.join(_roff_args(rest)))
            elif name == "br":
                flush()
            continue
        if in_example:
            continue
        line = _ROFF_ESCAPE.sub(_roff_escape, line)
        if tag_next:
            tag_next = False
            continue
        if not line.strip():
            flush()
            continue
        current.append(line)
    flush()
    return paragraphs


_HEADING_LINE = re.compile(r"^\s*(?:\d+\.)+\d*\s+\S")
_RULE_LINE = re.compile(r"^\s*[-=*~_#]{3,}\s*$")
_BULLET = re.compile(r"^\s*(?:[*•-]|\d+[.)])\s+")


def plain_paragraphs(text: str) -> list[str]:
    """Paragraphs of wrapped plain text: blank lines and bullets start a new paragraph;
    numbered headings, rules and `quote' / _emphasis_ marks are removed."""
    paragraphs: list[str] = []
    current: list[str] = []

    def flush():
        joined = normalize_space(" ".join(current))
        if joined:
            paragraphs.append(joined)
        current.clear()

    for line in text.splitlines():
        if not line.strip() or _RULE_LINE.match(line) or _HEADING_LINE.match(line):
            flush()
            continue
        if _BULLET.match(line):
            flush()
            line = _BULLET.sub("", line)
        current.append(line.strip())
    flush()
    cleaned = []
    for p in paragraphs:
        p = re.sub(r"`([^`']*)'", r'"\1"', p)
        p = re.sub(r"(?<!\w)_([^_]+)_(?!\w)", r"\1", p)
        cleaned.append(p)
    return cleaned


_NO_SPACE_BEFORE = re.compile(r" +([,.;:!?%)\]}…])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) +")


def detokenize(text: str) -> str:
    """Undoes tokenizer spacing: 'Ele disse , " sim " .' -> 'Ele disse, "sim".'"""
    tokens = text.split()
    out: list[str] = []
    open_quote = {'"': False, "'": False}
    glue_next = False
    for tok in tokens:
        if tok in open_quote:
            if open_quote[tok]:  # closing quote: attach to the previous token
                if out:
                    out[-1] += tok
                else:
                    out.append(tok)
                open_quote[tok] = False
                continue
            open_quote[tok] = True
            out.append(tok)
            glue_next = True
            continue
        if glue_next and out:
            out[-1] += tok
        else:
            out.append(tok)
        glue_next = False
    joined = " ".join(out)
    joined = _NO_SPACE_BEFORE.sub(r"\1", joined)
    return _NO_SPACE_AFTER.sub(r"\1", joined)


_CONTRACTIONS = {
    ("de", "o"): "do", ("de", "a"): "da", ("de", "os"): "dos", ("de", "as"): "das",
    ("em", "o"): "no", ("em", "a"): "na", ("em", "os"): "nos", ("em", "as"): "nas",
    ("a", "o"): "ao", ("a", "os"): "aos", ("a", "a"): "à", ("a", "as"): "às",
    ("por", "o"): "pelo", ("por", "a"): "pela", ("por", "os"): "pelos", ("por", "as"): "pelas",
}
for _pronoun in ("ele", "ela", "eles", "elas", "este", "esta", "estes", "estas", "esse", "essa",
                 "esses", "essas", "isso", "isto", "aquele", "aquela", "aqueles", "aquelas",
                 "aquilo"):
    _CONTRACTIONS[("de", _pronoun)] = "d" + _pronoun
    _CONTRACTIONS[("em", _pronoun)] = "n" + _pronoun
for _pronoun in ("aquele", "aquela", "aqueles", "aquelas", "aquilo"):
    _CONTRACTIONS[("a", _pronoun)] = "à" + _pronoun[1:]
_CONTRACTION = re.compile(
    r"\b(de|em|a|por) (o|a|os|as|el[ea]s?|es[st][ea]s?|is[st]o|aquel[ea]s?|aquilo)\b",
    re.IGNORECASE,
)


def _contract(match: re.Match) -> str:
    first, second = match.group(1), match.group(2)
    merged = _CONTRACTIONS.get((first.lower(), second.lower()))
    if merged is None:
        return match.group(0)
    if first.isupper() and len(first) > 1 and second.isupper():
        return merged.upper()
    if first[0].isupper():
        return merged[0].upper() + merged[1:]
    return merged


def recontract(text: str) -> str:
    """Re-joins preposition + article/pronoun that UD tokenization split ("de o" -> "do").

    Example:
        >>> recontract("Em a sexta , o chefe de a SAJ voltou a o Planalto")
        'Na sexta , o chefe da SAJ voltou ao Planalto'
    """
    return _CONTRACTION.sub(_contract, text)


def pack_paragraphs(paragraphs: list[str], max_words: int) -> list[str]:
    """Joins consecutive paragraphs into documents of at most `max_words` words (a longer
    paragraph stays alone), so a document is a coherent stretch of one source file."""
    docs: list[str] = []
    current: list[str] = []
    count = 0
    for p in paragraphs:
        n = len(p.split())
        if current and count + n > max_words:
            docs.append(" ".join(current))
            current, count = [], 0
        current.append(p)
        count += n
    if current:
        docs.append(" ".join(current))
    return docs
