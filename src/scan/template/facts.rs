//! What a template binds, collected before the check: which names are set, looped over or
//! passed as macro arguments, which hold only `namespace(...)` objects or map literals, and
//! which namespace fields only ever hold integers.
//!
//! Plain variables get no type here: a `{% set %}` may run after a read that still sees the
//! caller's value of the same name, so only lexically scoped facts (loop targets, tracked by
//! the walker) and namespace fields (which start from `namespace(...)` and nothing else) are
//! trusted.

use std::collections::{HashMap, HashSet};

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt, UnaryOpKind};
use minijinja::value::ValueKind;

use super::allow;

/// How a name gets its value.
pub(super) enum Binding<'a> {
    /// `set name = expr`, `with name = expr`.
    Value(&'a Expr<'a>),
    /// `for name in range(...)`.
    Range,
    /// Anything else: loop items, macro arguments, captured blocks, tuple unpacking.
    Other,
}

#[derive(Default)]
pub(super) struct Facts<'a> {
    pub(super) bindings: HashMap<&'a str, Vec<Binding<'a>>>,
    /// Namespace fields (`set ns.name = expr`, `namespace(name=expr)`); `None` when the value
    /// is not an expression (a captured block).
    fields: HashMap<&'a str, Vec<Option<&'a Expr<'a>>>>,
    /// A `namespace(...)` call with positional or `**` arguments sets fields unseen.
    opaque_namespace: bool,
    /// Keys of map literals and `dict(key=...)` calls: such objects answer `x.key` too.
    map_keys: HashSet<String>,
    /// A map literal or `dict(...)` call with a key not known as written.
    opaque_maps: bool,
    pub(super) macros: HashSet<&'a str>,
}

impl<'a> Facts<'a> {
    fn bind(&mut self, target: &'a Expr<'a>, binding: Binding<'a>) {
        match target {
            Expr::Var(var) => self.bindings.entry(var.id).or_default().push(binding),
            Expr::GetAttr(attr) => {
                let value = match binding {
                    Binding::Value(expr) => Some(expr),
                    _ => None,
                };
                self.fields.entry(attr.name).or_default().push(value);
            }
            Expr::Tuple(tuple) => {
                for item in &tuple.items {
                    self.bind(item, Binding::Other);
                }
            }
            Expr::List(list) => {
                for item in &list.items {
                    self.bind(item, Binding::Other);
                }
            }
            _ => {}
        }
    }

    fn stmts(&mut self, body: &'a [Stmt<'a>]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    pub(super) fn stmt(&mut self, stmt: &'a Stmt<'a>) {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::ForLoop(f) => {
                let range = matches!(&f.iter, Expr::Call(c)
                    if matches!(&c.expr, Expr::Var(v) if v.id == "range"));
                self.bind(
                    &f.target,
                    if range {
                        Binding::Range
                    } else {
                        Binding::Other
                    },
                );
                self.expr(&f.iter);
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr);
                self.stmts(&i.true_body);
                self.stmts(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.bind(target, Binding::Value(value));
                    self.expr(value);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(s) => {
                self.bind(&s.target, Binding::Value(&s.expr));
                self.expr(&s.expr);
            }
            Stmt::SetBlock(s) => {
                self.bind(&s.target, Binding::Other);
                self.stmts(&s.body);
            }
            Stmt::AutoEscape(a) => self.stmts(&a.body),
            Stmt::FilterBlock(f) => self.stmts(&f.body),
            Stmt::Macro(m) => {
                self.macros.insert(m.name);
                self.macro_args(m);
            }
            Stmt::CallBlock(c) => self.macro_args(&c.macro_decl),
            Stmt::Do(d) => self.call(&d.call),
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => self.bind(&i.name, Binding::Other),
            Stmt::FromImport(f) => {
                for (name, alias) in &f.names {
                    self.bind(alias.as_ref().unwrap_or(name), Binding::Other);
                }
            }
            Stmt::EmitRaw(_)
            | Stmt::Extends(_)
            | Stmt::Include(_)
            | Stmt::Continue(_)
            | Stmt::Break(_) => {}
        }
    }

    fn macro_args(&mut self, m: &'a ast::Macro<'a>) {
        for arg in &m.args {
            self.bind(arg, Binding::Other);
        }
        self.stmts(&m.body);
    }

    /// Only `namespace(name=value)` calls matter here: they bind namespace fields.
    fn expr(&mut self, expr: &'a Expr<'a>) {
        let mut stack = vec![expr];
        while let Some(expr) = stack.pop() {
            match expr {
                Expr::Call(c) => {
                    self.call(c);
                    stack.push(&c.expr);
                }
                Expr::Filter(f) => {
                    stack.extend(f.expr.iter());
                    stack.extend(f.args.iter().map(arg_expr));
                }
                Expr::Test(t) => {
                    stack.push(&t.expr);
                    stack.extend(t.args.iter().map(arg_expr));
                }
                Expr::GetAttr(a) => stack.push(&a.expr),
                Expr::GetItem(i) => stack.extend([&i.expr, &i.subscript_expr]),
                Expr::Slice(s) => {
                    stack.push(&s.expr);
                    stack.extend([&s.start, &s.stop, &s.step].into_iter().flatten());
                }
                Expr::UnaryOp(u) => stack.push(&u.expr),
                Expr::BinOp(b) => stack.extend([&b.left, &b.right]),
                Expr::Compare(c) => {
                    stack.push(&c.expr);
                    stack.extend(c.ops.iter().map(|op| &op.expr));
                }
                Expr::IfExpr(i) => {
                    stack.extend([&i.test_expr, &i.true_expr]);
                    stack.extend(i.false_expr.iter());
                }
                Expr::List(l) => stack.extend(l.items.iter()),
                Expr::Tuple(t) => stack.extend(t.items.iter()),
                Expr::Map(m) => {
                    for key in &m.keys {
                        match key {
                            Expr::Const(c)
                                if c.value.as_str().is_some_and(|k| !k.contains('\\')) =>
                            {
                                self.map_keys.insert(c.value.to_string());
                            }
                            _ => self.opaque_maps = true,
                        }
                    }
                    stack.extend(m.keys.iter().chain(m.values.iter()));
                }
                Expr::Var(_) | Expr::Const(_) => {}
            }
        }
    }

    fn call(&mut self, call: &'a ast::Call<'a>) {
        if matches!(&call.expr, Expr::Var(v) if v.id == "dict") {
            for arg in &call.args {
                match arg {
                    CallArg::Kwarg(name, _) => {
                        self.map_keys.insert((*name).to_owned());
                    }
                    _ => self.opaque_maps = true,
                }
            }
        }
        if matches!(&call.expr, Expr::Var(v) if v.id == "namespace") {
            for arg in &call.args {
                match arg {
                    CallArg::Kwarg(name, value) => {
                        self.fields.entry(name).or_default().push(Some(value))
                    }
                    _ => self.opaque_namespace = true,
                }
            }
        }
        for arg in &call.args {
            self.expr(arg_expr(arg));
        }
    }

    /// Names bound only to map literals, and the namespace
    /// fields that only ever hold integers: a greatest fixpoint, sound because a field's value
    /// comes only from `namespace(field=...)` and `set ns.field = ...`.
    pub(super) fn solve(&self) -> Solved<'a> {
        let only = |test: &dyn Fn(&Expr<'a>) -> bool| -> HashSet<&'a str> {
            self.bindings
                .iter()
                .filter(|(_, bindings)| {
                    bindings
                        .iter()
                        .all(|b| matches!(b, Binding::Value(expr) if test(expr)))
                })
                .map(|(name, _)| *name)
                .collect()
        };
        let maps = only(&|e| matches!(e, Expr::Map(_)));
        let mut solved = Solved {
            int_fields: HashSet::new(),
            maps,
        };
        if self.opaque_namespace || self.opaque_maps {
            return solved;
        }
        solved.int_fields = self
            .fields
            .iter()
            .filter(|(name, values)| {
                values.iter().all(Option::is_some) && !self.map_keys.contains(**name)
            })
            .map(|(name, _)| *name)
            .collect();
        // Each round removes at least one field, so this ends.
        loop {
            let drop: Vec<&str> = solved
                .int_fields
                .iter()
                .copied()
                .filter(|name| {
                    self.fields.get(name).is_some_and(|values| {
                        values
                            .iter()
                            .any(|v| !v.is_some_and(|e| is_int(e, &solved, &|_| false)))
                    })
                })
                .collect();
            if drop.is_empty() {
                return solved;
            }
            for name in drop {
                solved.int_fields.remove(name);
            }
        }
    }
}

pub(super) struct Solved<'a> {
    pub(super) int_fields: HashSet<&'a str>,
    pub(super) maps: HashSet<&'a str>,
}

pub(super) fn arg_expr<'x, 'a>(arg: &'x CallArg<'a>) -> &'x Expr<'a> {
    match arg {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => e,
    }
}

/// Whether `expr` is an integer whatever the caller passes: literals, loop counters, lengths,
/// integer namespace fields, `int_var` names (loop targets over `range`), and arithmetic over
/// those.
pub(super) fn is_int(expr: &Expr<'_>, solved: &Solved<'_>, int_var: &dyn Fn(&str) -> bool) -> bool {
    let int = |e: &Expr<'_>| is_int(e, solved, int_var);
    match expr {
        Expr::Const(c) => {
            c.value.kind() == ValueKind::Bool
                || (c.value.kind() == ValueKind::Number && c.value.is_integer())
        }
        Expr::UnaryOp(u) => matches!(u.op, UnaryOpKind::Neg) && int(&u.expr),
        Expr::BinOp(b) => {
            matches!(
                b.op,
                BinOpKind::Add
                    | BinOpKind::Sub
                    | BinOpKind::Mul
                    | BinOpKind::FloorDiv
                    | BinOpKind::Rem
            ) && int(&b.left)
                && int(&b.right)
        }
        Expr::Var(v) => int_var(v.id),
        Expr::GetAttr(a) => match &a.expr {
            Expr::Var(v) if v.id == "loop" => allow::LOOP_INTEGERS.contains(&a.name),
            // Any object with that field: namespaces (whose fields are all accounted for), or
            // the caller's data (which a model file does not control).
            _ => solved.int_fields.contains(a.name),
        },
        Expr::Filter(f) => match f.name {
            "length" | "count" | "int" => true,
            "abs" => f.expr.as_ref().is_some_and(int),
            _ => false,
        },
        Expr::IfExpr(i) => int(&i.true_expr) && i.false_expr.as_ref().is_some_and(int),
        _ => false,
    }
}
