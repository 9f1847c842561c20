// Syntax tree of the Jinja2 subset used by chat templates (Hugging Face `chat_template`): output, if/elif/else,
// for (with loop variables, filters and else), set (variables, namespace attributes, blocks), macro, the HF
// `generation` block, break/continue; expressions with Python operators, filters, tests, calls and slicing.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/tokenizer/jinja_value.h"

namespace volt::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum class Kind {
        kLiteral,    // value
        kName,       // name
        kList,       // items
        kTuple,      // items
        kDict,       // keys (string literal exprs) + items
        kAttribute,  // a.name
        kItem,       // a[b]
        kSlice,      // a[b:c:d] (items: start, stop, step; null when omitted)
        kCall,       // a(args, kwargs)
        kFilter,     // a | name(args, kwargs)
        kTest,       // a is [not] name(args)
        kUnary,      // op a   (op: "not", "-", "+")
        kBinary,     // a op b (op: "or" "and" "+" "-" "*" "/" "//" "%" "**" "~")
        kCompare,    // items[0] ops[0] items[1] ops[1] ... (Python chaining: 1 < x < 3)
        kConditional,  // items[0] if items[1] else items[2] (items[2] may be null)
    };
    Kind kind;
    int line = 0;
    Value value;
    std::string name;  // name / attribute / filter / test / operator
    bool negated = false;
    ExprPtr a, b;
    std::vector<ExprPtr> items;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<std::string> ops;  // kCompare: "==" "!=" "<" "<=" ">" ">=" "in" "not in"
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

struct Node {
    enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kGeneration };
    Kind kind;
    int line = 0;
    std::string text;  // kText
    ExprPtr expr;      // kOutput; kFor: iterable; kSet: value
    // kIf: one branch per if/elif (condition, body) and an else body.
    std::vector<std::pair<ExprPtr, NodeList>> branches;
    NodeList body;       // kFor body, kSetBlock body, kMacro body, kGeneration body
    NodeList else_body;  // kIf else, kFor else (runs when the loop ran zero times)
    ExprPtr filter;      // kFor: `for x in xs if cond`
    // kFor / kSet targets: one name, several names (tuple unpacking), or `ns.attr` (kSet only).
    std::vector<std::string> targets;
    std::string target_attr;
    // kMacro
    std::string macro_name;
    std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
};

struct Template {
    NodeList nodes;
};

}  // namespace volt::text::jinja
