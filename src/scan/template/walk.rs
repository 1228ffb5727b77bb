//! The allowlist check over a parsed template.
//!
//! Every statement and expression is visited: attribute and item names are judged by their
//! Python value; a computed item key is refused unless it is an integer or provably a key of
//! the container (a loop over the container's own keys, an `if key in container` guard, a
//! loop over a list of constant strings, a lookup in a map literal); every filter, test,
//! callable and method must be on the allowlist.

use minijinja::machinery::ast::{self, CallArg, CompareOpKind, Expr, Stmt};
use minijinja::machinery::Span;
use minijinja::value::ValueKind;

use super::facts::{arg_expr, is_int, Binding, Facts, Solved};
use super::text::{jinja2_tag_in_raw, plain_format_fields, unpacked};
use super::{allow, pystr};
use crate::finding::{quote, Code, Finding};

/// Deeper expressions are refused rather than walked (the parser bounds statement nesting
/// and the caller bounds tokens per tag, so real templates stay far below).
const MAX_DEPTH: usize = 200;

/// Checks `template` (the AST of `source`), returning at most `limit` findings.
pub(super) fn check(template: &Stmt<'_>, source: &str, limit: usize) -> Vec<Finding> {
    let mut facts = Facts::default();
    facts.stmt(template);
    let solved = facts.solve();
    let mut walker = Walker {
        source,
        facts: &facts,
        solved: &solved,
        known: Vec::new(),
        guards: Vec::new(),
        findings: Vec::new(),
        limit,
        depth: 0,
    };
    walker.stmt(template);
    walker.findings
}

/// What the walker knows about a loop target while inside its loop.
enum Known {
    /// `for i in range(...)`.
    Int,
    /// `for k in ['a', 'b']` (or a position of a list of tuples): the decoded constants,
    /// `None` for one that cannot be decoded.
    Choices(Vec<Option<String>>),
    /// `for k in d`, `for k, v in d|items`: a key of the container whose source text this is.
    KeyOf(String),
    /// Nothing: shadows what an outer scope knew about the name.
    Unknown,
}

struct Walker<'w, 'a> {
    source: &'w str,
    facts: &'w Facts<'a>,
    solved: &'w Solved<'a>,
    /// Loop targets in scope, innermost last.
    known: Vec<(&'a str, Known)>,
    /// `(key, container, statement)` source texts of enclosing `if key in container` tests;
    /// a statement's guard holds only while neither side is ever `set`.
    guards: Vec<(String, String, bool)>,
    findings: Vec<Finding>,
    limit: usize,
    depth: usize,
}

/// What a name position holds.
enum NameValue {
    /// String literals with their Python values (several for a loop over constants).
    Str(Vec<String>),
    /// An integer, `none`, a boolean or a float: not a name Python could resolve to internals.
    Harmless,
    /// A string literal whose Python value cannot be computed here.
    Undecodable,
    /// Anything computed.
    Computed,
}

impl<'w, 'a> Walker<'w, 'a> {
    fn report(&mut self, code: Code, span: Span, message: String) {
        if self.findings.len() < self.limit {
            let finding = Finding::new(
                code,
                format!(
                    "chat template line {}, column {}: {message}",
                    span.start_line,
                    u32::from(span.start_col).saturating_add(1)
                ),
            );
            self.findings
                .push(finding.with_hint("use the chat template published with the base model"));
        }
    }

    fn inject(&mut self, span: Span, message: String) {
        self.report(Code::ChatTemplateInjection, span, message);
    }

    fn stmts(&mut self, body: &[Stmt<'a>]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt<'a>) {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(raw) => {
                if let Some(at) = jinja2_tag_in_raw(raw.raw) {
                    let shown = raw.raw.get(at..).unwrap_or_default();
                    self.report(
                        Code::ChatTemplateInvalid,
                        raw.span(),
                        format!(
                            "raw text holds `{}`, which Jinja2 reads as the end of the raw block",
                            quote(shown.get(..shown.len().min(30)).unwrap_or(shown))
                        ),
                    );
                }
            }
            Stmt::ForLoop(f) => {
                self.target(&f.target);
                self.expr(&f.iter);
                let known = self.loop_facts(&f.target, &f.iter);
                let outer = self.known.len();
                self.known.extend(known);
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter);
                }
                self.stmts(&f.body);
                self.known.truncate(outer);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr);
                let guarded = self.push_guard(&i.expr, true);
                self.branch(&i.true_body);
                if guarded {
                    self.guards.pop();
                }
                self.branch(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                let outer = self.known.len();
                for (target, value) in &w.assignments {
                    self.target(target);
                    self.expr(value);
                    self.assign(target, Some(value));
                }
                self.stmts(&w.body);
                self.known.truncate(outer);
            }
            Stmt::Set(s) => {
                self.target(&s.target);
                self.expr(&s.expr);
                self.assign(&s.target, Some(&s.expr));
            }
            Stmt::SetBlock(s) => {
                self.target(&s.target);
                if let Some(filter) = &s.filter {
                    self.expr(filter);
                }
                self.stmts(&s.body);
                self.assign(&s.target, None);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.branch(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.branch(&f.body);
            }
            Stmt::Macro(m) => self.macro_decl(m),
            Stmt::CallBlock(c) => {
                self.call(&c.call, c.call.span());
                self.macro_decl(&c.macro_decl);
            }
            Stmt::Do(d) => self.call(&d.call, d.call.span()),
            Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::Block(b) => self.inject(
                b.span(),
                format!(
                    "`block {}` belongs to template inheritance, which chat templates do not use",
                    quote(b.name)
                ),
            ),
            Stmt::Extends(e) => self.loader(e.span(), "extends"),
            Stmt::Include(i) => self.loader(i.span(), "include"),
            Stmt::Import(i) => self.loader(i.span(), "import"),
            Stmt::FromImport(f) => self.loader(f.span(), "from ... import"),
        }
    }

    fn loader(&mut self, span: Span, what: &str) {
        self.inject(
            span,
            format!("`{what}` reads another template through the loader, outside this check"),
        );
    }

    /// A macro body runs when called, with its arguments and whatever the caller's scope
    /// holds then: nothing known outside carries over.
    fn macro_decl(&mut self, m: &ast::Macro<'a>) {
        for default in &m.defaults {
            self.expr(default);
        }
        let known = std::mem::take(&mut self.known);
        let guards = std::mem::take(&mut self.guards);
        for arg in &m.args {
            self.assign(arg, None);
        }
        self.stmts(&m.body);
        self.known = known;
        self.guards = guards;
    }

    /// Statements whose `set`s outlive them (`if` branches, filter blocks) but may not run:
    /// afterwards a name they set is an integer only if it was one before and after.
    fn branch(&mut self, body: &[Stmt<'a>]) {
        let outer = self.known.len();
        self.stmts(body);
        let inner: Vec<(&'a str, bool)> = self
            .known
            .drain(outer..)
            .map(|(name, known)| (name, matches!(known, Known::Int)))
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in inner.iter().rev() {
            if seen.contains(name) {
                continue;
            }
            seen.push(name);
            let last_int = inner
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .is_some_and(|(_, int)| *int);
            let before_int = matches!(self.lookup(name), Some(Known::Int));
            if !(last_int && before_int) {
                self.known.push((name, Known::Unknown));
            }
        }
    }

    /// Records what an assignment makes `target` hold from here on.
    fn assign(&mut self, target: &Expr<'a>, value: Option<&Expr<'_>>) {
        match target {
            Expr::Var(v) => {
                let known = match value {
                    Some(value) if self.is_int(value) => Known::Int,
                    Some(value) => match self.literal(value) {
                        Some(decoded) => Known::Choices(vec![decoded]),
                        None => Known::Unknown,
                    },
                    None => Known::Unknown,
                };
                self.known.push((v.id, known));
            }
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.assign(item, None)),
            Expr::List(l) => l.items.iter().for_each(|item| self.assign(item, None)),
            _ => {}
        }
    }

    /// Assignment targets: only `ns.field` can name an attribute.
    fn target(&mut self, target: &Expr<'a>) {
        match target {
            Expr::GetAttr(a) => {
                self.attribute_name(a.name, a.span());
                self.target(&a.expr);
            }
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.target(item)),
            Expr::List(l) => l.items.iter().for_each(|item| self.target(item)),
            _ => {}
        }
    }

    fn attribute_name(&mut self, name: &str, span: Span) {
        if allow::is_internal(name) {
            self.inject(
                span,
                format!(
                    "accesses attribute `{}`, which reaches Python internals",
                    quote(name)
                ),
            );
        }
    }

    fn is_int(&self, expr: &Expr<'_>) -> bool {
        is_int(expr, self.solved, &|name| {
            matches!(self.lookup(name), Some(Known::Int))
        })
    }

    fn lookup(&self, name: &str) -> Option<&Known> {
        self.known
            .iter()
            .rev()
            .find(|(bound, _)| *bound == name)
            .map(|(_, known)| known)
    }

    fn text(&self, span: Span) -> &'w str {
        usize::try_from(span.start_offset)
            .ok()
            .zip(usize::try_from(span.end_offset).ok())
            .and_then(|(start, end)| self.source.get(start..end))
            .unwrap_or_default()
            .trim()
    }

    /// The Python value of a string literal.
    fn literal(&self, expr: &Expr<'_>) -> Option<Option<String>> {
        match expr {
            Expr::Const(c) if c.value.kind() == ValueKind::String => {
                Some(pystr::decode_literals(self.text(c.span())))
            }
            _ => None,
        }
    }

    fn name_value(&self, expr: &Expr<'_>) -> NameValue {
        if let Some(value) = self.literal(expr) {
            return match value {
                Some(value) => NameValue::Str(vec![value]),
                None => NameValue::Undecodable,
            };
        }
        match expr {
            Expr::Const(c) => match c.value.kind() {
                ValueKind::None | ValueKind::Bool | ValueKind::Number => NameValue::Harmless,
                _ => NameValue::Computed,
            },
            _ if self.is_int(expr) => NameValue::Harmless,
            Expr::Var(v) => match self.lookup(v.id) {
                Some(Known::Choices(values)) => match values.iter().cloned().collect() {
                    Some(values) => NameValue::Str(values),
                    None => NameValue::Undecodable,
                },
                _ => NameValue::Computed,
            },
            _ => NameValue::Computed,
        }
    }

    /// Whether `key` is certainly a key that `container` holds, so Jinja2's lookup never
    /// falls back to `getattr`, or `container` is a map literal of the template (where a
    /// miss reaches one attribute of a `dict` at most, and nothing can walk on from a lookup).
    fn is_key_of(&self, key: &Expr<'_>, container: &Expr<'_>) -> bool {
        if let Expr::Var(v) = container {
            if self.solved.maps.contains(v.id) {
                return true;
            }
        }
        let container_text = self.text(container.span());
        let key_text = self.text(key.span());
        if let Expr::Var(v) = key {
            if let Some(Known::KeyOf(of)) = self.lookup(v.id) {
                if of == container_text && self.stable(container) {
                    return true;
                }
            }
        }
        self.guards.iter().any(|(k, c, statement)| {
            k == key_text
                && c == container_text
                && (!statement || (self.stable(key) && self.stable(container)))
        })
    }

    /// A variable or attribute path on a variable that the template never `set`s, so its
    /// text names the same value throughout a loop or an `if` body.
    fn stable(&self, expr: &Expr<'_>) -> bool {
        match expr {
            Expr::Var(v) => self
                .facts
                .bindings
                .get(v.id)
                .is_none_or(|bindings| !bindings.iter().any(|b| matches!(b, Binding::Value(_)))),
            Expr::GetAttr(a) => !allow::is_internal(a.name) && self.stable(&a.expr),
            _ => false,
        }
    }

    /// `if key in container` (alone or as the first operand of `and`): pushes the guard.
    fn push_guard(&mut self, test: &Expr<'_>, statement: bool) -> bool {
        let test = match test {
            Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::ScAnd) => &b.left,
            other => other,
        };
        // A single `in` parses as a binary operator, a chain as a comparison.
        let pair = match test {
            Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::In) => Some((&b.left, &b.right)),
            Expr::Compare(c) => match c.ops.as_slice() {
                [op] if matches!(op.op, CompareOpKind::In) => Some((&c.expr, &op.expr)),
                _ => None,
            },
            _ => None,
        };
        if let Some((key, container)) = pair {
            let key = self.text(key.span()).to_owned();
            let container = self.text(container.span()).to_owned();
            self.guards.push((key, container, statement));
            return true;
        }
        false
    }

    fn targets(&self, target: &Expr<'a>, out: &mut Vec<(&'a str, Known)>) {
        match target {
            Expr::Var(v) => out.push((v.id, Known::Unknown)),
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.targets(item, out)),
            Expr::List(l) => l.items.iter().for_each(|item| self.targets(item, out)),
            _ => {}
        }
    }

    /// What a loop's targets are known to hold inside its body.
    fn loop_facts(&self, target: &Expr<'a>, iter: &Expr<'_>) -> Vec<(&'a str, Known)> {
        let mut out = Vec::new();
        // Every target shadows outer knowledge; what is known is pushed after it.
        self.targets(target, &mut out);
        match (target, iter) {
            (Expr::Var(v), Expr::Call(c))
                if matches!(&c.expr, Expr::Var(r) if r.id == "range")
                    && !self.facts.bindings.contains_key("range") =>
            {
                out.push((v.id, Known::Int));
            }
            (_, Expr::List(list)) => {
                let targets = unpacked(target);
                let arity = targets.map_or(1, <[Expr<'a>]>::len);
                for position in 0..arity {
                    let name = match targets {
                        Some(items) => items.get(position),
                        None => Some(target),
                    };
                    let Some(Expr::Var(v)) = name else { continue };
                    let values: Option<Vec<Option<String>>> = list
                        .items
                        .iter()
                        .map(|item| match (targets, unpacked(item)) {
                            (Some(_), Some(items)) if items.len() == arity => {
                                items.get(position).and_then(|e| self.literal(e))
                            }
                            (None, _) => self.literal(item),
                            _ => None,
                        })
                        .collect();
                    if let Some(values) = values {
                        out.push((v.id, Known::Choices(values)));
                    }
                }
            }
            _ => {
                // `for k in d`, `for k in d.keys()`, `for k, v in d|items` / `d.items()` /
                // `d|dictsort`: `k` is a key of `d`.
                let (container, pairs) = match iter {
                    Expr::Filter(f)
                        if matches!(f.name, "items" | "dictsort") && f.args.is_empty() =>
                    {
                        (f.expr.as_ref(), true)
                    }
                    Expr::Call(c) if c.args.is_empty() => match &c.expr {
                        Expr::GetAttr(a) if a.name == "items" => (Some(&a.expr), true),
                        Expr::GetAttr(a) if a.name == "keys" => (Some(&a.expr), false),
                        _ => (None, false),
                    },
                    other => (Some(other), false),
                };
                let key = match (target, unpacked(target), pairs) {
                    (Expr::Var(v), _, false) => Some(v),
                    (_, Some([Expr::Var(v), _]), true) => Some(v),
                    _ => None,
                };
                if let (Some(container), Some(key)) = (container, key) {
                    if self.stable(container) {
                        let text = self.text(container.span()).to_owned();
                        out.push((key.id, Known::KeyOf(text)));
                    }
                }
            }
        }
        out
    }

    /// A name Jinja2 resolves with `getattr` (item keys fall back to it too). `dotted` names
    /// (`attribute=` arguments) are split on dots as Jinja2's `make_attrgetter` does.
    fn judge_name(&mut self, expr: &Expr<'a>, what: &str, dotted: bool) {
        match self.name_value(expr) {
            NameValue::Harmless => {}
            NameValue::Str(values) => {
                let bad = values.iter().find(|value| {
                    if dotted {
                        value.split('.').any(allow::is_internal)
                    } else {
                        allow::is_internal(value)
                    }
                });
                if let Some(value) = bad {
                    self.inject(
                        expr.span(),
                        format!(
                            "{what} `{}` reaches Python internals",
                            quote(&value.escape_debug().to_string())
                        ),
                    );
                }
            }
            NameValue::Undecodable => self.inject(
                expr.span(),
                format!("{what} is a string literal whose Python value cannot be checked"),
            ),
            NameValue::Computed => self.inject(
                expr.span(),
                format!("{what} is computed, not a constant string or an integer"),
            ),
        }
    }

    fn expr(&mut self, expr: &Expr<'a>) {
        if self.depth >= MAX_DEPTH {
            self.report(
                Code::ChatTemplateInvalid,
                expr.span(),
                format!("expression nested deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        self.depth += 1;
        self.expr_inner(expr);
        self.depth -= 1;
    }

    fn expr_inner(&mut self, expr: &Expr<'a>) {
        match expr {
            Expr::Var(v) => {
                if allow::FORBIDDEN_NAMES.contains(&v.id) && !self.facts.bindings.contains_key(v.id)
                {
                    self.inject(
                        v.span(),
                        format!("uses `{}`, a global that leads out of the template", v.id),
                    );
                }
            }
            Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                let guarded = self.push_guard(&i.test_expr, false);
                self.expr(&i.true_expr);
                if guarded {
                    self.guards.pop();
                }
                if let Some(e) = &i.false_expr {
                    self.expr(e);
                }
            }
            Expr::Filter(f) => {
                self.filter(f, expr.span());
                if let Some(e) = &f.expr {
                    self.expr(e);
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                if !allow::TESTS.contains(&t.name) {
                    self.inject(
                        expr.span(),
                        format!(
                            "uses test `{}`, which is not on the allowlist",
                            quote(t.name)
                        ),
                    );
                }
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::GetAttr(a) => {
                self.attribute_name(a.name, expr.span());
                self.expr(&a.expr);
            }
            Expr::GetItem(i) => {
                if !self.is_key_of(&i.subscript_expr, &i.expr) {
                    self.judge_name(&i.subscript_expr, "item key", false);
                }
                self.expr(&i.expr);
                self.expr(&i.subscript_expr);
            }
            Expr::Call(c) => self.call(c, expr.span()),
            Expr::List(l) => l.items.iter().for_each(|e| self.expr(e)),
            Expr::Tuple(t) => t.items.iter().for_each(|e| self.expr(e)),
            Expr::Map(m) => m.keys.iter().chain(&m.values).for_each(|e| self.expr(e)),
        }
    }

    fn args(&mut self, args: &[CallArg<'a>]) {
        for arg in args {
            self.expr(arg_expr(arg));
        }
    }

    fn call(&mut self, call: &ast::Call<'a>, span: Span) {
        match &call.expr {
            Expr::Var(v) => {
                let own = self.facts.macros.contains(v.id)
                    || matches!(v.id, "caller" | "loop")
                    || (allow::FUNCTIONS.contains(&v.id)
                        && !self.facts.bindings.contains_key(v.id));
                if !own {
                    self.inject(
                        span,
                        format!(
                            "calls `{}`, which is neither a macro of the template nor on the \
                             allowlist",
                            quote(v.id)
                        ),
                    );
                }
            }
            Expr::GetAttr(a) => {
                if a.name == "format" {
                    self.format_call(&a.expr, span);
                } else if a.name == "format_map" {
                    self.inject(
                        span,
                        "calls `.format_map()`, whose format fields can walk attributes".to_owned(),
                    );
                } else if !allow::METHODS.contains(&a.name) {
                    self.inject(
                        span,
                        format!(
                            "calls method `.{}()`, which is not on the allowlist",
                            quote(a.name)
                        ),
                    );
                }
                self.attribute_name(a.name, span);
                self.expr(&a.expr);
            }
            other => {
                self.inject(span, "calls a computed value".to_owned());
                self.expr(other);
            }
        }
        self.args(&call.args);
    }

    /// Filter names, and the attribute and filter/test names that some filters take as
    /// arguments.
    fn filter(&mut self, f: &ast::Filter<'a>, span: Span) {
        if !allow::FILTERS.contains(&f.name) {
            self.inject(
                span,
                format!(
                    "uses filter `{}`, which is not on the allowlist",
                    quote(f.name)
                ),
            );
            return;
        }
        if !allow::ATTRIBUTE_FILTERS.contains(&f.name) {
            return;
        }
        if f.args
            .iter()
            .any(|a| matches!(a, CallArg::PosSplat(_) | CallArg::KwargSplat(_)))
        {
            self.inject(
                span,
                format!(
                    "passes `*`/`**` arguments to `{}`, hiding what it looks up",
                    f.name
                ),
            );
            return;
        }
        let positional: Vec<&Expr<'a>> = f
            .args
            .iter()
            .filter_map(|a| match a {
                CallArg::Pos(e) => Some(e),
                _ => None,
            })
            .collect();
        for arg in &f.args {
            if let CallArg::Kwarg("attribute", value) = arg {
                self.judge_name(value, "attribute argument", true);
            }
        }
        match f.name {
            "attr" => match positional.as_slice() {
                [name] => self.judge_name(name, "attribute", false),
                _ => self.inject(span, "`attr` takes exactly one name".to_owned()),
            },
            "map" => {
                let by_attribute = f
                    .args
                    .iter()
                    .any(|a| matches!(a, CallArg::Kwarg("attribute", _)));
                if !by_attribute {
                    match positional.first() {
                        Some(name) => self.named(name, allow::FILTERS, "filter", true),
                        None => self.inject(span, "`map` without a filter name".to_owned()),
                    }
                }
            }
            "select" | "reject" => {
                if let Some(name) = positional.first() {
                    self.named(name, allow::TESTS, "test", false);
                }
            }
            "selectattr" | "rejectattr" => {
                if let Some(name) = positional.first() {
                    self.judge_name(name, "attribute argument", true);
                }
                if let Some(test) = positional.get(1) {
                    self.named(test, allow::TESTS, "test", false);
                }
            }
            // groupby(attribute), sort(reverse, case_sensitive, attribute),
            // sum(attribute, start), unique/min/max(case_sensitive, attribute): every
            // positional argument is judged as a possible attribute name.
            _ => {
                for arg in positional {
                    self.judge_name(arg, "attribute argument", true);
                }
            }
        }
    }

    /// A filter or test named by a string argument (`map('upper')`, `select('defined')`).
    fn named(&mut self, expr: &Expr<'a>, list: &[&str], kind: &str, no_attribute: bool) {
        let message = match self.name_value(expr) {
            NameValue::Str(names) => match names.as_slice() {
                [name]
                    if list.contains(&name.as_str())
                        && !(no_attribute && allow::ATTRIBUTE_FILTERS.contains(&name.as_str())) =>
                {
                    return
                }
                [name] => format!(
                    "names {kind} `{}`, which is not on the allowlist here",
                    quote(&name.escape_debug().to_string())
                ),
                _ => format!("names a {kind} that varies"),
            },
            _ => format!("names a {kind} with a computed value"),
        };
        self.inject(expr.span(), message);
    }

    /// `'literal'.format(...)` whose fields only insert arguments; anything else may walk
    /// attributes (`'{0.__class__}'`) where the checker cannot see.
    fn format_call(&mut self, receiver: &Expr<'_>, span: Span) {
        let safe = self
            .literal(receiver)
            .flatten()
            .is_some_and(|text| plain_format_fields(&text));
        if !safe {
            self.inject(
                span,
                "calls `.format()` on a format string that is not a literal with plain fields"
                    .to_owned(),
            );
        }
    }
}
