//! Block tree: each logical line is a node (keyword + arguments); a `{` opens
//! a block of child nodes closed by the matching `}`. Built iteratively so no
//! input can exhaust the stack.

use super::diag::{Diagnostics, Span};
use super::lexer::{Tok, TokKind, TokenSink};

/// Blocks nested deeper than this are reported and their contents dropped;
/// no keepalived configuration nests more than five levels.
const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug)]
pub struct Word {
    pub text: String,
    pub span: Span,
    pub quoted: bool,
}

impl PartialEq for Word {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: Word,
    pub args: Vec<Word>,
    /// Children when the keyword opens a `{ }` block.
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn span(&self) -> &Span {
        &self.name.span
    }
}

struct OpenBlock {
    node: Node,
    children: Vec<Node>,
    open: Span,
    discard: bool,
}

/// Builds the tree one token at a time (see `lexer::TokenSink`).
#[derive(Default)]
pub struct TreeBuilder {
    root: Vec<Node>,
    stack: Vec<OpenBlock>,
    pending: Option<Node>,
    // The previous line ended with a bare keyword: a `{` on the next line
    // still opens its block.
    last_line_node_open_ok: bool,
    depth_reported: bool,
}

impl TreeBuilder {
    fn children(&mut self) -> &mut Vec<Node> {
        match self.stack.last_mut() {
            Some(open) => &mut open.children,
            None => &mut self.root,
        }
    }

    /// Top-level nodes that can no longer change: all but the last, which a
    /// `{` on the next line may still open.
    pub fn take_completed(&mut self) -> std::vec::Drain<'_, Node> {
        let done = self.root.len().saturating_sub(1);
        self.root.drain(..done)
    }

    pub fn finish(mut self, diags: &mut Diagnostics) -> Vec<Node> {
        if let Some(node) = self.pending.take() {
            self.children().push(node);
        }
        while let Some(mut open) = self.stack.pop() {
            diags.error(
                &open.open,
                format!(
                    "missing '}}' for the block of '{}' opened here (reached end of file)",
                    open.node.name.text
                ),
            );
            if !open.discard {
                open.node.block = Some(open.children);
                self.children().push(open.node);
            }
        }
        self.root
    }
}

impl TokenSink for TreeBuilder {
    fn token(&mut self, tok: Tok, diags: &mut Diagnostics) {
        match tok.kind {
            TokKind::Word => {
                self.last_line_node_open_ok = false;
                let word = Word {
                    text: tok.text,
                    span: tok.span,
                    quoted: tok.quoted,
                };
                match self.pending.as_mut() {
                    Some(node) => node.args.push(word),
                    None => {
                        self.pending = Some(Node {
                            name: word,
                            args: Vec::new(),
                            block: None,
                        })
                    }
                }
            }
            TokKind::Open => {
                let node = match self.pending.take() {
                    Some(node) => Some(node),
                    None if self.last_line_node_open_ok => self.children().pop(),
                    None => None,
                };
                self.last_line_node_open_ok = false;
                let node = node.unwrap_or_else(|| {
                    diags.error(&tok.span, "'{' without a keyword before it");
                    Node {
                        name: Word {
                            text: String::new(),
                            span: tok.span.clone(),
                            quoted: false,
                        },
                        args: Vec::new(),
                        block: None,
                    }
                });
                let parent_discarded = self.stack.last().is_some_and(|b| b.discard);
                let too_deep = self.stack.len() >= MAX_DEPTH;
                if too_deep && !self.depth_reported {
                    self.depth_reported = true;
                    diags.error(
                        &tok.span,
                        format!("blocks nested deeper than {MAX_DEPTH} levels; contents ignored"),
                    );
                }
                let discard = parent_discarded || too_deep || node.name.text.is_empty();
                self.stack.push(OpenBlock {
                    node,
                    children: Vec::new(),
                    open: tok.span,
                    discard,
                });
            }
            TokKind::Close => {
                self.last_line_node_open_ok = false;
                if let Some(node) = self.pending.take() {
                    self.children().push(node);
                }
                match self.stack.pop() {
                    None => diags.error(&tok.span, "unexpected '}': no block is open here"),
                    Some(mut open) => {
                        if !open.discard {
                            open.node.block = Some(open.children);
                            self.children().push(open.node);
                        }
                    }
                }
            }
            TokKind::EndOfLine => {
                if let Some(node) = self.pending.take() {
                    self.children().push(node);
                    self.last_line_node_open_ok = true;
                } else {
                    self.last_line_node_open_ok = false;
                }
            }
        }
    }
}

pub fn parse_tree(tokens: Vec<Tok>, diags: &mut Diagnostics) -> Vec<Node> {
    let mut builder = TreeBuilder::default();
    for tok in tokens {
        builder.token(tok, diags);
    }
    builder.finish(diags)
}

#[cfg(test)]
mod tests {
    use super::super::lexer::{lex_str, LoadOptions};
    use super::*;

    fn tree(text: &str) -> (Vec<Node>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let toks = lex_str("t.conf", text, &LoadOptions::default(), &mut diags);
        (parse_tree(toks, &mut diags), diags)
    }

    #[test]
    fn nested_blocks_and_one_line_blocks() {
        let (t, d) = tree("a 1 2 {\n b { c }\n d\n}\ne\n{\nf\n}\n");
        assert!(d.items.is_empty(), "{:?}", d.items);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name.text, "a");
        assert_eq!(t[0].args.len(), 2);
        let a = t[0].block.as_ref().unwrap();
        assert_eq!(a[0].name.text, "b");
        assert_eq!(a[0].block.as_ref().unwrap()[0].name.text, "c");
        assert_eq!(a[1].name.text, "d");
        // `{` on the line after the keyword opens that keyword's block.
        assert_eq!(t[1].name.text, "e");
        assert_eq!(t[1].block.as_ref().unwrap()[0].name.text, "f");
    }

    #[test]
    fn unbalanced_braces() {
        let (_, d) = tree("a {\n b {\n}\n");
        let e: Vec<String> = d.errors().map(|d| d.to_string()).collect();
        assert_eq!(e, ["t.conf:1:3: error: missing '}' for the block of 'a' opened here (reached end of file)"]);
        let (_, d) = tree("a\n}\n");
        let e: Vec<String> = d.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            e,
            ["t.conf:2:1: error: unexpected '}': no block is open here"]
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = "a {".repeat(100_000) + &"}".repeat(100_000);
        let (t, d) = tree(&text);
        assert_eq!(t.len(), 1);
        assert!(d.has_errors());
    }
}
