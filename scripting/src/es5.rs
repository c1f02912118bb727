//! A lint for syntax beyond ES5. QuickJS runs ES2023, but Kubeshark's
//! agents are ES5 and the hub may run them on engines that are not; this
//! finds the common post-ES5 constructs (`let`/`const`, arrow functions,
//! template literals, classes, spread, `for..of`, optional chaining, `??`,
//! `**`, generators, async, modules, binary/octal literals) with a small
//! tokenizer that skips strings, comments and regular expressions. It is a
//! lint, not a parser: rarer constructs (destructuring, shorthand methods)
//! are not reported.

use crate::error::{Es5Finding, Position};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start, or a punctuator after which `/` starts a regex.
    Operator,
    /// An identifier, literal, `)` or `]`: `/` divides.
    Operand,
}

const REGEX_AFTER_WORDS: [&str; 11] = [
    "return",
    "typeof",
    "case",
    "do",
    "else",
    "in",
    "instanceof",
    "new",
    "delete",
    "void",
    "throw",
];

/// Constructs beyond ES5 in `source`, in order.
pub fn check(source: &str) -> Vec<Es5Finding> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    let mut prev = Prev::Operator;
    // Recent identifier-ish tokens, for `for (var x of ...)` and `let x`.
    let mut words: Vec<String> = Vec::new();
    let mut paren_after_for = false;
    let at = |line: u32, col: u32| Position { line, column: col };
    let ch = |k: usize| chars.get(k).copied().unwrap_or('\0');

    macro_rules! advance {
        ($n:expr) => {
            for _ in 0..$n {
                if ch(i) == '\n' {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
                i += 1;
            }
        };
    }

    while i < chars.len() {
        let c = ch(i);
        let (l0, c0) = (line, col);
        match c {
            _ if c.is_whitespace() => advance!(1),
            '/' if ch(i + 1) == '/' => {
                while i < chars.len() && ch(i) != '\n' {
                    advance!(1);
                }
            }
            '/' if ch(i + 1) == '*' => {
                advance!(2);
                while i < chars.len() && !(ch(i) == '*' && ch(i + 1) == '/') {
                    advance!(1);
                }
                advance!(2);
            }
            '/' if prev == Prev::Operator => {
                // A regular expression literal.
                advance!(1);
                let mut class = false;
                while i < chars.len() && ch(i) != '\n' {
                    match ch(i) {
                        '\\' => advance!(1),
                        '[' => class = true,
                        ']' => class = false,
                        '/' if !class => break,
                        _ => {}
                    }
                    advance!(1);
                }
                advance!(1);
                while ch(i).is_alphanumeric() {
                    advance!(1);
                }
                prev = Prev::Operand;
            }
            '\'' | '"' => {
                advance!(1);
                while i < chars.len() && ch(i) != c && ch(i) != '\n' {
                    if ch(i) == '\\' {
                        advance!(1);
                    }
                    advance!(1);
                }
                advance!(1);
                prev = Prev::Operand;
            }
            '`' => {
                out.push(Es5Finding { at: at(l0, c0), what: "template literal" });
                advance!(1);
                while i < chars.len() && ch(i) != '`' {
                    if ch(i) == '\\' {
                        advance!(1);
                    }
                    advance!(1);
                }
                advance!(1);
                prev = Prev::Operand;
            }
            _ if c.is_ascii_digit() || (c == '.' && ch(i + 1).is_ascii_digit()) => {
                if c == '0' && matches!(ch(i + 1), 'b' | 'B' | 'o' | 'O') {
                    out.push(Es5Finding { at: at(l0, c0), what: "binary or octal literal" });
                }
                while ch(i).is_alphanumeric() || ch(i) == '.' || ch(i) == '_' {
                    advance!(1);
                }
                prev = Prev::Operand;
            }
            _ if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while ch(i).is_alphanumeric() || ch(i) == '_' || ch(i) == '$' {
                    advance!(1);
                }
                let w: String = chars.get(start..i).unwrap_or_default().iter().collect();
                // What follows, skipping spaces on the same line.
                let mut j = i;
                while ch(j) == ' ' || ch(j) == '\t' {
                    j += 1;
                }
                let next = ch(j);
                let prev_word = words.last().map(String::as_str);
                let member = start > 0 && ch(start - 1) == '.';
                if !member {
                    match w.as_str() {
                        "let"
                            if next.is_alphabetic()
                                || next == '_'
                                || next == '$'
                                || next == '['
                                || next == '{' =>
                        {
                            out.push(Es5Finding { at: at(l0, c0), what: "let declaration" })
                        }
                        "const" => {
                            out.push(Es5Finding { at: at(l0, c0), what: "const declaration" })
                        }
                        "class" if next.is_alphabetic() || next == '{' => {
                            out.push(Es5Finding { at: at(l0, c0), what: "class" })
                        }
                        "import" | "export" if next != '(' && next != ':' => {
                            out.push(Es5Finding { at: at(l0, c0), what: "module syntax" })
                        }
                        "async" if next == 'f' || next == '(' => {
                            out.push(Es5Finding { at: at(l0, c0), what: "async function" })
                        }
                        "await" => out.push(Es5Finding { at: at(l0, c0), what: "await" }),
                        "of" if paren_after_for && matches!(prev_word, Some(p) if p != "for") => {
                            out.push(Es5Finding { at: at(l0, c0), what: "for..of loop" })
                        }
                        "function" if next == '*' => {
                            out.push(Es5Finding { at: at(l0, c0), what: "generator function" })
                        }
                        _ => {}
                    }
                }
                if w == "for" {
                    paren_after_for = true;
                }
                prev = if REGEX_AFTER_WORDS.contains(&w.as_str()) {
                    Prev::Operator
                } else {
                    Prev::Operand
                };
                words.push(w);
                if words.len() > 4 {
                    words.remove(0);
                }
            }
            _ => {
                let two: String = [c, ch(i + 1)].iter().collect();
                let three: String = [c, ch(i + 1), ch(i + 2)].iter().collect();
                let what = match () {
                    _ if three == "..." => Some(("spread or rest", 3)),
                    _ if two == "=>" => Some(("arrow function", 2)),
                    _ if two == "?." && !ch(i + 2).is_ascii_digit() => {
                        Some(("optional chaining", 2))
                    }
                    _ if two == "??" => Some(("nullish coalescing", 2)),
                    _ if two == "**" => Some(("exponent operator", 2)),
                    _ => None,
                };
                match what {
                    Some((w, n)) => {
                        out.push(Es5Finding { at: at(l0, c0), what: w });
                        advance!(n);
                    }
                    None => advance!(1),
                }
                if c == ')' || c == '{' || c == ';' {
                    paren_after_for = false;
                }
                prev = if c == ')' || c == ']' { Prev::Operand } else { Prev::Operator };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(s: &str) -> Vec<&'static str> {
        check(s).into_iter().map(|f| f.what).collect()
    }

    #[test]
    fn es5_is_clean() {
        let src = r#"
var packetCount = 0; // let's count => nothing
/* const x = `y` */
function onItemCaptured(data) {
  var re = /a`b=>c/g, s = "let x = 1", t = 'const';
  var half = packetCount / 2 / 1;
  for (var k in data) { if (a ? .5 : 1) {} }
  return typeof re === "object" ? s.length : t;
}
obj.let = obj.class;
"#;
        assert_eq!(whats(src), Vec::<&str>::new());
    }

    #[test]
    fn finds_post_es5_constructs_with_positions() {
        let src = "let a = 1;\nconst f = (x) => `v${x}`;\nfor (var y of [1]) {}\nclass K {}\nvar z = o?.p ?? 2 ** 3;\nfunction* g() {}\n";
        let f = check(src);
        let w: Vec<&str> = f.iter().map(|f| f.what).collect();
        assert_eq!(
            w,
            vec![
                "let declaration",
                "const declaration",
                "arrow function",
                "template literal",
                "for..of loop",
                "class",
                "optional chaining",
                "nullish coalescing",
                "exponent operator",
                "generator function"
            ]
        );
        assert_eq!(f[0].at, Position { line: 1, column: 1 });
        assert_eq!(f[2].at, Position { line: 2, column: 15 });
    }
}
