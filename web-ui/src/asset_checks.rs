//! Checks on the embedded dashboard files (the same bytes the binary serves): colours are
//! written once, in `tokens.css`, as variables that follow dark mode and the high-contrast
//! preference; every other stylesheet and the charts' script name those variables. A colour
//! literal anywhere else would be one that dark mode, or the next change of palette, misses.

use crate::assets::{ASSETS, embedded};

/// The one stylesheet that may write colours.
const TOKENS: &str = "tokens.css";

/// Scripts that draw with colours: they must take them from the stylesheet.
const COLOURED_SCRIPTS: &[&str] = &["chart.js", "chart-scale.js"];

/// CSS functions that write a colour.
const COLOUR_FUNCTIONS: &[&str] =
    &["rgb", "rgba", "hsl", "hsla", "hwb", "lab", "lch", "oklab", "oklch", "color"];

/// CSS named and system colours (CSS Color 4), separated by whitespace. `transparent` and
/// `currentColor` are not in it: they carry no colour of their own.
const NAMED_COLOURS: &str = "\
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue \
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk \
    crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki \
    darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen \
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue \
    dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite \
    gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo ivory khaki \
    lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan \
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen \
    lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen \
    magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen \
    mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream \
    mistyrose moccasin navajowhite navy oldlace olive olivedrab orange orangered orchid \
    palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum \
    powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown \
    seagreen seashell sienna silver skyblue slateblue slategray slategrey snow springgreen \
    steelblue tan teal thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen \
    accentcolor accentcolortext activetext buttonborder buttonface buttontext canvas canvastext \
    field fieldtext graytext highlight highlighttext linktext mark marktext selecteditem \
    selecteditemtext visitedtext";

/// A colour literal found in a file: its line and what it says.
type Literal = (usize, String);

/// `text` with its comments (and, with `blank_strings`, the insides of its string literals)
/// blanked to spaces, newlines kept so line numbers stay true. `js` adds `//` comments and
/// template literals.
fn blank(text: &str, js: bool, blank_strings: bool) -> String {
    fn wipe(out: &mut [u8], from: usize, to: usize) {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    }
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"/*") {
            let end = find(b, i + 2, b"*/").map_or(b.len(), |e| e + 2);
            wipe(&mut out, i, end);
            i = end;
        } else if js && rest.starts_with(b"//") {
            let end = find(b, i, b"\n").unwrap_or(b.len());
            wipe(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' || b[i] == b'\'' || (js && b[i] == b'`') {
            let close = string_end(b, i);
            if blank_strings {
                wipe(&mut out, i + 1, close);
            }
            i = close + 1;
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the string literal opened by the quote at `open` closes (or the end of the text).
fn string_end(b: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < b.len() && b[i] != b[open] {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i.min(b.len())
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The colour literals in a CSS or script value, e.g. `1px solid #ccc` or `"#ccc"`: `#` and
/// hex digits, a colour function, a named or system colour. Offsets are into `value`.
fn literals_in(value: &str) -> Vec<(usize, String)> {
    let b = value.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'#' {
            i += 1;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            let hex = &value[start + 1..i];
            if matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                found.push((start, value[start..i].to_owned()));
            }
        } else if b[i].is_ascii_digit() || b[i] == b'.' {
            // A number and its unit: `12px` is not the word `px`.
            while i < b.len() && (word(b[i]) || b[i] == b'.' || b[i] == b'%') {
                i += 1;
            }
        } else if word(b[i]) {
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            let name = value[start..i].to_ascii_lowercase();
            let function = b.get(i) == Some(&b'(');
            if (function && COLOUR_FUNCTIONS.contains(&name.as_str()))
                || (!function && NAMED_COLOURS.split_whitespace().any(|n| n == name))
            {
                found.push((start, value[start..i].to_owned()));
            }
        } else {
            i += 1;
        }
    }
    found
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|&c| c == b'\n').count() + 1
}

/// The colour literals in a stylesheet's declarations. Selectors and at-rule preludes (what
/// comes before a `{`) are not values: `#week` there is an element, `:hover` no property.
fn css_literals(css: &str) -> Vec<Literal> {
    let text = blank(css, false, true);
    let mut found = Vec::new();
    let mut start = 0;
    for (end, c) in text.char_indices() {
        if !matches!(c, '{' | '}' | ';') {
            continue;
        }
        let statement = &text[start..end];
        if c != '{'
            && let Some(colon) = statement.find(':')
        {
            let at = start + colon + 1;
            for (off, lit) in literals_in(&text[at..end]) {
                found.push((line_of(&text, at + off), lit));
            }
        }
        start = end + 1;
    }
    found
}

/// The colour literals in a script's string literals (comments are prose, not drawing).
fn script_literals(js: &str) -> Vec<Literal> {
    let text = blank(js, true, false);
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b'"' | b'\'' | b'`') {
            let close = string_end(b, i);
            for (off, lit) in literals_in(&text[i + 1..close]) {
                found.push((line_of(&text, i + 1 + off), lit));
            }
            i = close + 1;
        } else {
            i += 1;
        }
    }
    found
}

fn text_of(name: &str) -> String {
    embedded(name).map(|a| String::from_utf8_lossy(a.body).into_owned()).unwrap_or_default()
}

#[test]
fn colours_are_written_only_in_the_tokens() {
    let mut offences = Vec::new();
    for asset in ASSETS.iter().filter(|a| a.name.ends_with(".css") && a.name != TOKENS) {
        for (line, lit) in css_literals(&text_of(asset.name)) {
            offences.push(format!("{}:{line}: {lit}", asset.name));
        }
    }
    for name in COLOURED_SCRIPTS {
        assert!(embedded(name).is_some(), "{name} is not embedded");
        for (line, lit) in script_literals(&text_of(name)) {
            offences.push(format!("{name}:{line}: {lit}"));
        }
    }
    assert!(
        offences.is_empty(),
        "colour literals outside {TOKENS} (add a variable there and use it):\n{}",
        offences.join("\n")
    );
    // The tokens themselves are found by the same scan, so it is not blind.
    assert!(!css_literals(&text_of(TOKENS)).is_empty(), "no colours found in {TOKENS}");
}

#[test]
fn the_page_links_every_stylesheet_tokens_then_components_then_views() {
    let html = text_of("index.html");
    let linked: Vec<&str> = html
        .split("<link rel=\"stylesheet\" href=\"/assets/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let mut embedded_css: Vec<&str> =
        ASSETS.iter().map(|a| a.name).filter(|n| n.ends_with(".css")).collect();
    let mut sorted = linked.clone();
    sorted.sort_unstable();
    embedded_css.sort_unstable();
    assert_eq!(sorted, embedded_css, "every stylesheet linked once, and only those");
    assert_eq!(linked.get(..2), Some(&[TOKENS, "components.css"][..]), "layer order: {linked:?}");
}

#[test]
fn the_scan_finds_colours_in_values_only() {
    let css = [
        "/* #fff red */",
        "#week, .a:hover { color: #abc; }",
        ".b {",
        "  border: 1px solid rgb(0 0 0);",
        "  font-family: \"Red Hat\", sans-serif;",
        "  fill: var(--red-ish, Canvas);",
        "  background: transparent;",
        "  box-shadow: 0 0 4px currentColor;",
        "}",
    ]
    .join("\n");
    let found = [(2, "#abc".to_owned()), (4, "rgb".to_owned()), (6, "Canvas".to_owned())];
    assert_eq!(css_literals(&css), found, "{css}");
    let js = [
        "// the view's red line",
        "const a = 'var(--x)';",
        "const b = \"#e5484d\";",
        "const c = `hsl(${h} 60% 45%)`; /* 'white' */",
        "const d = 'Heating';",
    ]
    .join("\n");
    assert_eq!(script_literals(&js), [(3, "#e5484d".to_owned()), (4, "hsl".to_owned())], "{js}");
}
