use proptest::prelude::*;

use super::*;

fn show(input: &str) -> Vec<String> {
    parse_selector(input).unwrap_or_else(|e| panic!("{input}: {e}")).iter().map(ToString::to_string).collect()
}

fn value(input: &str) -> String {
    parse_selector(input).unwrap_or_else(|e| panic!("{input}: {e}")).pop().unwrap().value
}

#[test]
fn parses_every_form() {
    assert_eq!(show("cpu"), [r#"__name__="cpu""#]);
    assert_eq!(show(" ns:cpu:rate5m \t"), [r#"__name__="ns:cpu:rate5m""#]);
    assert_eq!(
        show("cpu_usage {a=\"x\", b=~\"re.*\",\n c!=\"y\",d!~'z|w',}"),
        [r#"__name__="cpu_usage""#, r#"a="x""#, r#"b=~"re.*""#, r#"c!="y""#, r#"d!~"z|w""#]
    );
    assert_eq!(show(r#"{__name__=~"cpu_.*"}"#), [r#"__name__=~"cpu_.*""#]);
    assert_eq!(show("cpu{}"), [r#"__name__="cpu""#]);
    // Prometheus 3's quoted names, when the engine's label rules allow them.
    assert_eq!(show(r#"{"cpu", "host"="a"}"#), [r#"__name__="cpu""#, r#"host="a""#]);
    assert_eq!(show("{`ns:x`}"), [r#"__name__="ns:x""#]);
    let m = parse_selector(r#"m{host=~"h1|h2"}"#).unwrap();
    assert!(m[1].matches("h2") && !m[1].matches("h12"), "regexes are anchored");
}

#[test]
fn strings_use_gos_escapes() {
    assert_eq!(value(r#"{a="q\"x\\y\nz"}"#), "q\"x\\y\nz");
    assert_eq!(value(r#"{a="\a\b\f\n\r\t\v"}"#), "\x07\x08\x0c\n\r\t\x0b");
    assert_eq!(value(r#"{a="\x41\101\u00e9\U0001F600"}"#), "AAé😀");
    assert_eq!(value(r#"{a="\xc3\xa9"}"#), "é", "byte escapes add up to UTF-8");
    assert_eq!(value(r"{a='it\'s'}"), "it's");
    assert_eq!(value(r#"{a='say "hi"'}"#), "say \"hi\"");
    assert_eq!(value("{a=`raw\\d+\n\"`}"), "raw\\d+\n\"");
    assert_eq!(value("{a=\"é日本\"}"), "é日本");
    let m = parse_selector(r#"{a=~"a\\.b"}"#).unwrap();
    assert!(m[0].matches("a.b") && !m[0].matches("axb"));
}

#[test]
fn errors_give_the_column_and_what_was_expected() {
    let cases = [
        ("", 1, "empty selector"),
        ("  ", 1, "empty selector"),
        ("cpu{host=\"a\"", 13, "missing '}'"),
        ("cpu{host}", 9, "expected =, !=, =~ or !~"),
        ("cpu{host=a}", 10, "expected a quoted value"),
        ("cpu{host=\"a}", 10, "unterminated string"),
        ("cpu{host=\"a\nb\"}", 10, "unterminated string"),
        ("cpu{host=\"a\" region=\"b\"}", 14, "expected ',' or '}'"),
        ("cpu{1a=\"x\"}", 5, "expected a label name"),
        ("cpu{a=~\"(\"}", 8, "invalid matcher"),
        ("cpu extra", 5, "expected '{' or the end"),
        ("cpu{} extra", 7, "unexpected text"),
        ("{a=\"\"}", 1, "does not match the empty string"),
        ("{a=~\".*\"}", 1, "does not match the empty string"),
        ("{}", 1, "does not match the empty string"),
        ("cpu{__name__=\"x\"}", 5, "given twice"),
        ("cpu{\"x\"}", 5, "given twice"),
        ("9cpu", 1, "expected a metric name"),
        ("-", 1, "expected a metric name"),
        ("{a=\"é\\q\"}", 6, "unknown escape sequence \\q"),
        ("{a=\"\\'\"}", 5, "only the opening quote"),
        ("{a='\\\"'}", 5, "only the opening quote"),
        ("{a=\"\\u12\"}", 9, "illegal character"),
        ("{a=\"\\ud800\"}", 5, "invalid Unicode code point"),
        ("{a=\"\\U00110000\"}", 5, "invalid Unicode code point"),
        ("{a=\"\\400\"}", 5, "octal escape above"),
        ("{a=\"\\xff\"}", 4, "do not form UTF-8"),
        ("{a=\"\\", 5, "not terminated"),
        ("{\"my.metric\"}", 2, "metric name \"my.metric\" is not allowed"),
        ("{\"label.name\"=\"v\"}", 2, "label name must match"),
        ("cpu{a:b=\"x\"}", 6, "expected =, !=, =~ or !~"),
        ("cpu{a=\"x\"\u{0b}}", 10, "expected ',' or '}'"),
    ];
    for (input, column, msg) in cases {
        let e = parse_selector(input).unwrap_err();
        assert_eq!(e.column, column, "{input:?}: {e}");
        assert!(e.message.contains(msg), "{input:?}: {e}");
    }
    let e = parse_selector("cpu{host}").unwrap_err();
    assert_eq!(e.to_string(), "invalid selector at column 9: expected =, !=, =~ or !~ after label \"host\"");
    assert_eq!(e.pointer(), "  cpu{host}\n          ^");
}

#[test]
fn series_parse_and_print() {
    let l = Labels::from_pairs([("__name__", "cpu"), ("host", "a\"b\\c\nd\t\u{1}\u{85}"), ("z", "{,}")]).unwrap();
    assert_eq!(l.to_string(), r#"cpu{host="a\"b\\c\nd\t\x01\u0085",z="{,}"}"#);
    assert_eq!(parse_series(&l.to_string()).unwrap(), l);
    let name_only = Labels::from_pairs([("__name__", "up")]).unwrap();
    assert_eq!(name_only.to_string(), "up");
    let no_name = Labels::from_pairs([("job", "x")]).unwrap();
    assert_eq!(no_name.to_string(), r#"{job="x"}"#);
    assert_eq!(parse_series(r#"{job="x"}"#).unwrap(), no_name);
    let e = parse_series(r#"cpu{a=~"x"}"#).unwrap_err();
    assert!(e.message.contains("label=\"value\" pairs only") && e.column == 5, "{e}");
    assert!(parse_series(r#"{a=""}"#).unwrap_err().message.contains("at least one"));
    assert!(parse_series(r#"cpu{a="1",a="2"}"#).unwrap_err().message.contains("a"));
}

#[test]
fn selectors_print_canonically() {
    let print = |s: &str| selector_string(&parse_selector(s).unwrap());
    assert_eq!(print("{ __name__ = 'cpu' , b !~ `x\\.y` , }"), r#"cpu{b!~"x\\.y"}"#);
    assert_eq!(print("{__name__=~'cpu.*'}"), r#"{__name__=~"cpu.*"}"#);
    assert_eq!(print("up"), "up");
    // Two names: neither goes before the braces, or the output would not parse.
    assert_eq!(print(r#"{":pu", "hostb",}"#), r#"{__name__=":pu",__name__="hostb"}"#);
    assert_eq!(print(r#"{__name__="a",__name__!="b"}"#), r#"{__name__="a",__name__!="b"}"#);
    let ms = [Matcher::eq("a.b", "x")];
    assert_eq!(selector_string(&ms), r#"{"a.b"="x"}"#, "a name the engine refuses is quoted, not mangled");
}

fn label_value() -> impl Strategy<Value = String> {
    // Any chars, weighted towards the ones that need escaping.
    let special = prop::sample::select(vec!['"', '\'', '`', '\\', '\n', '\r', '\t', '\0', '\x7f', '\u{85}', '{', '}']);
    prop::collection::vec(prop_oneof![any::<char>(), special], 0..12).prop_map(|v| v.into_iter().collect())
}

fn labels() -> impl Strategy<Value = Labels> {
    let name = prop::option::of("[a-zA-Z_:][a-zA-Z0-9_:]{0,6}");
    let pairs = prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,6}", label_value()), 0..5);
    (name, pairs).prop_filter_map("not a valid series", |(name, pairs)| {
        let mut all: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != METRIC_NAME).collect();
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        all.extend(name.map(|n| (METRIC_NAME.to_string(), n)));
        Labels::from_pairs(all).ok()
    })
}

proptest! {
    #[test]
    fn series_round_trip(l in labels()) {
        let text = l.to_string();
        prop_assert_eq!(parse_series(&text).map_err(|e| TestCaseError::fail(e.to_string()))?, l, "{}", text);
    }

    #[test]
    fn selectors_round_trip(l in labels(), ops in prop::collection::vec(0..4usize, 5)) {
        let ms: Vec<Matcher> = l.iter().zip(ops.iter().cycle()).map(|((k, v), op)| match op {
            0 => Matcher::eq(k, v),
            1 => Matcher::ne(k, v),
            2 => Matcher::regex(k, regex::escape(v)).unwrap(),
            _ => Matcher::not_regex(k, regex::escape(v)).unwrap(),
        }).collect();
        let text = selector_string(&ms);
        match parse_selector(&text) {
            Ok(back) => {
                let key = |ms: &[Matcher]| {
                    let mut v: Vec<_> = ms.iter().map(|m| (m.name.clone(), m.op, m.value.clone())).collect();
                    v.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
                    v
                };
                prop_assert_eq!(key(&back), key(&ms), "{}", text);
            }
            Err(e) => prop_assert!(ms.iter().all(Matcher::matches_empty), "{text}: {e}"),
        }
    }

    #[test]
    fn never_panics_and_points_inside_the_input(s in "[a-z_:{}=~!,\"'`\\\\ \\nuxU0-7é.*|()]{0,40}") {
        if let Err(e) = parse_selector(&s) {
            prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1, "{s:?}: {e}");
        }
        let _ = parse_series(&s);
    }
}
