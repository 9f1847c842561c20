#include "text/tokenizer/jinja_interpreter.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "text/tokenizer/jinja_builtins.h"
#include "text/tokenizer/utf8.h"

namespace volt::text::jinja {

Value make_callable(std::function<Expected<Value>(std::vector<Value>&, Kwargs&)> fn) {
    Value v;
    v.kind = Value::Kind::kCallable;
    v.fn = std::make_shared<Callable>(Callable{std::move(fn)});
    return v;
}

namespace {

constexpr int kMaxCallDepth = 64;          // macro recursion
constexpr size_t kMaxOutputBytes = 64 << 20;  // a runaway template is an error, not an OOM

std::vector<std::string> code_points(const std::string& s) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t start = pos;
        utf8_next(s, pos);
        out.push_back(s.substr(start, pos - start));
    }
    return out;
}

class Interpreter {
public:
    Interpreter(const Value& variables, const std::string& where) : where_(where) {
        frames_.emplace_back();
        Value globals = builtin_globals();
        for (const auto& [k, v] : globals.dict->items()) frames_.back()[k] = v;
        if (variables.is_dict())
            for (const auto& [k, v] : variables.dict->items()) frames_.back()[k] = v;
    }

    Expected<std::string> run(const Template& t) {
        std::string out;
        VOLT_ASSIGN_OR_RETURN(Flow f, exec(t.nodes, out));
        (void)f;
        return out;
    }

private:
    enum class Flow { kNormal, kBreak, kContinue };

    Status error(int line, const std::string& what) const { return invalid_argument(where_, ": line ", line, ": ", what); }
    Status at_line(int line, const Status& s) const {
        if (s.is_ok() || s.message().rfind(where_, 0) == 0) return s;
        return Status(s.code(), str_cat(where_, ": line ", line, ": ", s.message()));
    }

    Value lookup(const std::string& name) const {
        for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
            auto f = it->find(name);
            if (f != it->end()) return f->second;
        }
        return Value::undefined(name);
    }
    Value* lookup_ref(const std::string& name) {
        for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
            auto f = it->find(name);
            if (f != it->end()) return &f->second;
        }
        return nullptr;
    }

    Expected<Flow> exec(const NodeList& nodes, std::string& out) {
        for (const auto& n : nodes) {
            VOLT_ASSIGN_OR_RETURN(Flow f, exec_node(*n, out));
            if (f != Flow::kNormal) return f;
            if (out.size() > kMaxOutputBytes) return resource_exhausted(where_, ": rendered text exceeds 64 MiB");
        }
        return Flow::kNormal;
    }

    // Whether `v` is or contains (through lists and dicts) the dict `target`.
    static bool reaches(const Value& v, const Dict* target) {
        std::vector<const Value*> stack = {&v};
        std::vector<const void*> seen;
        while (!stack.empty()) {
            const Value* x = stack.back();
            stack.pop_back();
            const void* id = x->is_dict() ? static_cast<const void*>(x->dict.get())
                             : x->is_list() ? static_cast<const void*>(x->list.get()) : nullptr;
            if (!id) continue;
            if (id == target) return true;
            if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
            seen.push_back(id);
            if (x->is_list())
                for (const auto& e : *x->list) stack.push_back(&e);
            else
                for (const auto& [k, e] : x->dict->items()) stack.push_back(&e);
        }
        return false;
    }

    Status assign(const Node& n, Value v) {
        if (!n.target_attr.empty()) {
            Value* ns = lookup_ref(n.targets[0]);
            if (!ns || !ns->is_dict() || !ns->is_namespace)
                return error(n.line, "cannot set attribute '" + n.target_attr + "' of '" + n.targets[0] +
                                         "': only namespace() objects take attribute assignment");
            // Values are reference-counted: a namespace that (transitively) held itself would never be freed.
            if (reaches(v, ns->dict.get()))
                return error(n.line, "cannot set '" + n.targets[0] + "." + n.target_attr + "' to a value that contains '" +
                                         n.targets[0] + "' itself");
            ns->dict->set(n.target_attr, std::move(v));
            return Status::ok();
        }
        if (n.targets.size() == 1) {
            frames_.back()[n.targets[0]] = std::move(v);
            return Status::ok();
        }
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        if (items.size() != n.targets.size())
            return error(n.line, str_cat("cannot unpack ", items.size(), " values into ", n.targets.size(), " names"));
        for (size_t k = 0; k < items.size(); ++k) frames_.back()[n.targets[k]] = items[k];
        return Status::ok();
    }

    Expected<Flow> exec_node(const Node& n, std::string& out) {
        switch (n.kind) {
            case Node::Kind::kText: out += n.text; return Flow::kNormal;
            case Node::Kind::kOutput: {
                VOLT_ASSIGN_OR_RETURN(Value v, eval(*n.expr));
                out += v.str();
                return Flow::kNormal;
            }
            case Node::Kind::kIf:
                for (const auto& [cond, body] : n.branches) {
                    VOLT_ASSIGN_OR_RETURN(Value c, eval(*cond));
                    if (c.truthy()) return exec(body, out);
                }
                return exec(n.else_body, out);
            case Node::Kind::kFor: return exec_for(n, out);
            case Node::Kind::kSet: {
                VOLT_ASSIGN_OR_RETURN(Value v, eval(*n.expr));
                VOLT_RETURN_IF_ERROR(assign(n, std::move(v)));
                return Flow::kNormal;
            }
            case Node::Kind::kSetBlock: {
                std::string captured;
                VOLT_ASSIGN_OR_RETURN(Flow f, exec(n.body, captured));
                (void)f;
                frames_.back()[n.targets[0]] = Value::string(std::move(captured));
                return Flow::kNormal;
            }
            case Node::Kind::kMacro: {
                const Node* macro = &n;
                frames_.back()[n.macro_name] = make_callable([this, macro](std::vector<Value>& args, Kwargs& kwargs) {
                    return call_macro(*macro, args, kwargs);
                });
                return Flow::kNormal;
            }
            case Node::Kind::kGeneration: return exec(n.body, out);
            case Node::Kind::kBreak:
                if (loop_depth_ == 0) return error(n.line, "'break' outside a loop");
                return Flow::kBreak;
            case Node::Kind::kContinue:
                if (loop_depth_ == 0) return error(n.line, "'continue' outside a loop");
                return Flow::kContinue;
        }
        return Flow::kNormal;
    }

    Expected<Value> call_macro(const Node& m, std::vector<Value>& args, Kwargs& kwargs) {
        if (++call_depth_ > kMaxCallDepth) {
            --call_depth_;
            return error(m.line, "macro '" + m.macro_name + "' recursed too deeply");
        }
        if (args.size() > m.params.size())
            return error(m.line, str_cat("macro '", m.macro_name, "' takes ", m.params.size(), " arguments, got ", args.size()));
        frames_.emplace_back();
        Status st;
        for (size_t k = 0; k < m.params.size() && st.is_ok(); ++k) {
            const auto& [pname, def] = m.params[k];
            Value v = Value::undefined(pname);
            if (k < args.size()) v = args[k];
            else if (def) {
                auto d = eval(*def);
                if (!d) st = d.status();
                else v = *d;
            }
            frames_.back()[pname] = v;
        }
        for (auto& [key, v] : kwargs) {
            bool known = false;
            for (const auto& p : m.params) known = known || p.first == key;
            if (!known && st.is_ok()) st = error(m.line, "macro '" + m.macro_name + "' has no parameter '" + key + "'");
            frames_.back()[key] = v;
        }
        std::string out;
        if (st.is_ok()) {
            size_t saved_depth = loop_depth_;
            loop_depth_ = 0;
            auto f = exec(m.body, out);
            loop_depth_ = saved_depth;
            if (!f) st = f.status();
        }
        frames_.pop_back();
        --call_depth_;
        if (!st.is_ok()) return st;
        return Value::string(std::move(out));
    }

    Expected<Flow> exec_for(const Node& n, std::string& out) {
        VOLT_ASSIGN_OR_RETURN(Value iterable, eval(*n.expr));
        if (iterable.is_none()) return error(n.line, "'NoneType' object is not iterable");
        VOLT_ASSIGN_OR_RETURN(auto all, iterate(iterable));
        std::vector<Value> items;
        frames_.emplace_back();
        // `for x in xs if cond`: the filter sees the loop target, and loop.* counts only the kept items.
        for (auto& item : all) {
            if (n.filter) {
                Node target;
                target.targets = n.targets;
                auto st = assign(target, item);
                if (!st.is_ok()) { frames_.pop_back(); return st; }
                auto keep = eval(*n.filter);
                if (!keep) { frames_.pop_back(); return keep.status(); }
                if (!keep->truthy()) continue;
            }
            items.push_back(item);
        }
        ++loop_depth_;
        Status st;
        for (size_t k = 0; k < items.size() && st.is_ok(); ++k) {
            frames_.back().clear();
            Node target;
            target.line = n.line;
            target.targets = n.targets;
            st = assign(target, items[k]);
            if (!st.is_ok()) break;
            Value loop = Value::make_dict();
            const int64_t len = int64_t(items.size()), idx = int64_t(k);
            loop.dict->set("index", Value::integer(idx + 1));
            loop.dict->set("index0", Value::integer(idx));
            loop.dict->set("revindex", Value::integer(len - idx));
            loop.dict->set("revindex0", Value::integer(len - idx - 1));
            loop.dict->set("first", Value::boolean(k == 0));
            loop.dict->set("last", Value::boolean(idx == len - 1));
            loop.dict->set("length", Value::integer(len));
            loop.dict->set("previtem", k > 0 ? items[k - 1] : Value::undefined("previtem"));
            loop.dict->set("nextitem", idx + 1 < len ? items[k + 1] : Value::undefined("nextitem"));
            loop.dict->set("cycle", make_callable([idx](std::vector<Value>& args, Kwargs&) -> Expected<Value> {
                if (args.empty()) return invalid_argument("loop.cycle() needs at least one value");
                return args[size_t(idx) % args.size()];
            }));
            frames_.back()["loop"] = loop;
            auto f = exec(n.body, out);
            if (!f) { st = f.status(); break; }
            if (*f == Flow::kBreak) break;
        }
        --loop_depth_;
        frames_.pop_back();
        if (!st.is_ok()) return st;
        if (items.empty()) return exec(n.else_body, out);
        return Flow::kNormal;
    }

    Expected<Value> eval(const Expr& e) {
        auto r = eval_inner(e);
        if (!r) return at_line(e.line, r.status());
        return r;
    }

    Expected<Value> eval_inner(const Expr& e) {
        switch (e.kind) {
            case Expr::Kind::kLiteral: return e.value;
            case Expr::Kind::kName: return lookup(e.name);
            case Expr::Kind::kList:
            case Expr::Kind::kTuple: {
                Value v = Value::make_list();
                v.is_tuple = e.kind == Expr::Kind::kTuple;
                for (const auto& item : e.items) {
                    VOLT_ASSIGN_OR_RETURN(Value x, eval(*item));
                    v.list->push_back(std::move(x));
                }
                return v;
            }
            case Expr::Kind::kDict: {
                Value v = Value::make_dict();
                for (size_t k = 0; k < e.items.size(); ++k) {
                    VOLT_ASSIGN_OR_RETURN(Value key, eval(*e.items[k]));
                    if (!key.is_string()) return invalid_argument("dict keys must be strings, got '", key.type_name(), "'");
                    VOLT_ASSIGN_OR_RETURN(Value val, eval(*e.kwargs[k].second));
                    v.dict->set(key.s, std::move(val));
                }
                return v;
            }
            case Expr::Kind::kAttribute: {
                VOLT_ASSIGN_OR_RETURN(Value obj, eval(*e.a));
                return get_attribute(obj, e.name);
            }
            case Expr::Kind::kItem: {
                VOLT_ASSIGN_OR_RETURN(Value obj, eval(*e.a));
                VOLT_ASSIGN_OR_RETURN(Value key, eval(*e.b));
                return get_item(obj, key);
            }
            case Expr::Kind::kSlice: return eval_slice(e);
            case Expr::Kind::kCall: {
                VOLT_ASSIGN_OR_RETURN(Value fn, eval(*e.a));
                std::vector<Value> args;
                Kwargs kwargs;
                VOLT_RETURN_IF_ERROR(eval_args(e, args, kwargs));
                if (fn.kind != Value::Kind::kCallable) {
                    std::string what = e.a->kind == Expr::Kind::kName ? "'" + e.a->name + "'" :
                                       e.a->kind == Expr::Kind::kAttribute ? "'" + e.a->name + "'" : "expression";
                    if (fn.is_undefined()) return invalid_argument(what, " is undefined (not a known function or method)");
                    return invalid_argument(what, " of type '", fn.type_name(), "' is not callable");
                }
                return fn.fn->call(args, kwargs);
            }
            case Expr::Kind::kFilter: {
                VOLT_ASSIGN_OR_RETURN(Value subject, eval(*e.a));
                std::vector<Value> args;
                Kwargs kwargs;
                VOLT_RETURN_IF_ERROR(eval_args(e, args, kwargs));
                return apply_filter(e.name, subject, args, kwargs);
            }
            case Expr::Kind::kTest: {
                VOLT_ASSIGN_OR_RETURN(Value subject, eval(*e.a));
                std::vector<Value> args;
                Kwargs kwargs;
                VOLT_RETURN_IF_ERROR(eval_args(e, args, kwargs));
                VOLT_ASSIGN_OR_RETURN(bool r, apply_test(e.name, subject, args));
                return Value::boolean(r != e.negated);
            }
            case Expr::Kind::kUnary: {
                VOLT_ASSIGN_OR_RETURN(Value v, eval(*e.a));
                if (e.name == "not") return Value::boolean(!v.truthy());
                if (!v.is_number()) return invalid_argument("bad operand type for unary ", e.name, ": '", v.type_name(), "'");
                if (e.name == "+") return v;
                if (v.kind == Value::Kind::kInt) {
                    if (v.i == INT64_MIN) return invalid_argument("integer overflow");
                    return Value::integer(-v.i);
                }
                return Value::number(-v.f);
            }
            case Expr::Kind::kBinary: return eval_binary(e);
            case Expr::Kind::kCompare: {
                // Python chaining: a < b < c is (a < b) and (b < c), each operand evaluated once.
                VOLT_ASSIGN_OR_RETURN(Value left, eval(*e.items[0]));
                for (size_t k = 0; k < e.ops.size(); ++k) {
                    VOLT_ASSIGN_OR_RETURN(Value right, eval(*e.items[k + 1]));
                    VOLT_ASSIGN_OR_RETURN(bool r, compare_op(e.ops[k], left, right));
                    if (!r) return Value::boolean(false);
                    left = std::move(right);
                }
                return Value::boolean(true);
            }
            case Expr::Kind::kConditional: {
                VOLT_ASSIGN_OR_RETURN(Value c, eval(*e.items[1]));
                if (c.truthy()) return eval(*e.items[0]);
                if (e.items[2]) return eval(*e.items[2]);
                return Value::undefined();
            }
        }
        return internal_error("unknown expression");
    }

    Status eval_args(const Expr& e, std::vector<Value>& args, Kwargs& kwargs) {
        for (const auto& a : e.items) {
            VOLT_ASSIGN_OR_RETURN(Value v, eval(*a));
            args.push_back(std::move(v));
        }
        for (const auto& [k, a] : e.kwargs) {
            VOLT_ASSIGN_OR_RETURN(Value v, eval(*a));
            kwargs.emplace_back(k, std::move(v));
        }
        return Status::ok();
    }

    Expected<Value> get_attribute(const Value& obj, const std::string& name) {
        if (obj.is_undefined())
            return invalid_argument("'", obj.undefined_name.empty() ? "value" : obj.undefined_name, "' is undefined (reading .", name, ")");
        if (obj.is_none()) return invalid_argument("'None' has no attribute '", name, "'");
        // Jinja's getattr: a method of the type first, then the dict key.
        if (!obj.is_namespace) {
            Value m = get_method(obj, name);
            if (!m.is_undefined()) return m;
        }
        if (obj.is_dict()) {
            if (const Value* v = obj.dict->find(name)) return *v;
        }
        return Value::undefined(name);
    }

    Expected<Value> get_item(const Value& obj, const Value& key) {
        if (obj.is_undefined())
            return invalid_argument("'", obj.undefined_name.empty() ? "value" : obj.undefined_name, "' is undefined (reading [", key.repr(), "])");
        if (obj.is_dict()) {
            if (key.is_string())
                if (const Value* v = obj.dict->find(key.s)) return *v;
            if (key.is_string()) return get_attribute(obj, key.s);  // Jinja's getitem falls back to getattr
            return Value::undefined(key.repr());
        }
        if (obj.is_list() || obj.is_string()) {
            if (key.kind != Value::Kind::kInt) {
                if (key.is_string()) return get_method(obj, key.s);
                return invalid_argument("indices must be integers, not '", key.type_name(), "'");
            }
            if (obj.is_list()) {
                int64_t n = int64_t(obj.list->size()), i = key.i < 0 ? key.i + n : key.i;
                if (i < 0 || i >= n) return Value::undefined(str_cat("index ", key.i));
                return (*obj.list)[size_t(i)];
            }
            auto cps = code_points(obj.s);
            int64_t n = int64_t(cps.size()), i = key.i < 0 ? key.i + n : key.i;
            if (i < 0 || i >= n) return Value::undefined(str_cat("index ", key.i));
            return Value::string(cps[size_t(i)]);
        }
        if (obj.is_none()) return invalid_argument("'None' is not subscriptable");
        return invalid_argument("'", obj.type_name(), "' is not subscriptable");
    }

    Expected<Value> eval_slice(const Expr& e) {
        VOLT_ASSIGN_OR_RETURN(Value obj, eval(*e.a));
        std::optional<int64_t> bound[3];
        for (int k = 0; k < 3; ++k) {
            if (!e.items[size_t(k)]) continue;
            VOLT_ASSIGN_OR_RETURN(Value v, eval(*e.items[size_t(k)]));
            if (v.is_none()) continue;
            if (v.kind != Value::Kind::kInt) return invalid_argument("slice indices must be integers");
            bound[k] = v.i;
        }
        int64_t step = bound[2].value_or(1);
        if (step == 0) return invalid_argument("slice step cannot be zero");
        std::vector<Value> seq;
        bool is_str = obj.is_string();
        if (is_str) for (auto& c : code_points(obj.s)) seq.push_back(Value::string(c));
        else if (obj.is_list()) seq = *obj.list;
        else return invalid_argument("'", obj.type_name(), "' cannot be sliced");
        const int64_t n = int64_t(seq.size());
        auto clamp = [&](std::optional<int64_t> b, int64_t dflt) {
            if (!b) return dflt;
            int64_t x = *b < 0 ? *b + n : *b;
            if (step > 0) return std::clamp<int64_t>(x, 0, n);
            return std::clamp<int64_t>(x, -1, n - 1);
        };
        int64_t start = clamp(bound[0], step > 0 ? 0 : n - 1), stop = clamp(bound[1], step > 0 ? n : -1);
        std::vector<Value> out;
        // start and stop are clamped to [-1, n], so the count cannot overflow; stepping by index avoids i += step.
        const int64_t span = step > 0 ? stop - start : start - stop, stride = step > 0 ? step : -step;
        const int64_t count = span > 0 ? (span - 1) / stride + 1 : 0;
        for (int64_t k = 0; k < count; ++k) out.push_back(seq[size_t(start + (step > 0 ? k * stride : -k * stride))]);
        if (!is_str) return Value::make_list(std::move(out));
        std::string s;
        for (auto& v : out) s += v.s;
        return Value::string(std::move(s));
    }

    Expected<Value> eval_binary(const Expr& e) {
        const std::string& op = e.name;
        VOLT_ASSIGN_OR_RETURN(Value a, eval(*e.a));
        if (op == "and") return a.truthy() ? eval(*e.b) : Expected<Value>(a);
        if (op == "or") return a.truthy() ? Expected<Value>(a) : eval(*e.b);
        VOLT_ASSIGN_OR_RETURN(Value b, eval(*e.b));
        if (op == "~") return Value::string(a.str() + b.str());
        return arithmetic(op, a, b);
    }

    static Expected<bool> compare_op(const std::string& op, const Value& a, const Value& b) {
        if (op == "==") return equals(a, b);
        if (op == "!=") return !equals(a, b);
        if (op == "in" || op == "not in") {
            VOLT_ASSIGN_OR_RETURN(bool r, contains(b, a));
            return op == "in" ? r : !r;
        }
        VOLT_ASSIGN_OR_RETURN(int c, compare(a, b));
        return op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }

    static Expected<bool> contains(const Value& container, const Value& item) {
        if (container.is_string()) {
            if (!item.is_string()) return invalid_argument("'in <string>' requires string as left operand, not '", item.type_name(), "'");
            return container.s.find(item.s) != std::string::npos;
        }
        if (container.is_list()) {
            for (const auto& v : *container.list)
                if (equals(v, item)) return true;
            return false;
        }
        if (container.is_dict()) return item.is_string() && container.dict->find(item.s) != nullptr;
        if (container.is_undefined()) return invalid_argument("'", container.undefined_name, "' is undefined (right side of 'in')");
        return invalid_argument("argument of type '", container.type_name(), "' is not iterable");
    }

    static Expected<Value> arithmetic(const std::string& op, const Value& a, const Value& b) {
        auto type_error = [&]() {
            return invalid_argument("unsupported operand types for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
        };
        if (op == "+") {
            if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
            if (a.is_list() && b.is_list()) {
                List l = *a.list;
                l.insert(l.end(), b.list->begin(), b.list->end());
                return Value::make_list(std::move(l));
            }
        }
        if (op == "*") {
            const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
            const Value* count = seq == &a ? &b : &a;
            if (seq && count->kind == Value::Kind::kInt) {
                // Empty sequences stay empty whatever the count (and must not loop count times).
                const int64_t n = (seq->is_string() ? seq->s.empty() : seq->list->empty()) ? 0 : std::max<int64_t>(count->i, 0);
                if (seq->is_string()) {
                    if (n > 0 && seq->s.size() > kMaxOutputBytes / size_t(n))
                        return resource_exhausted("string repetition longer than 64 MiB");
                    std::string s;
                    s.reserve(seq->s.size() * size_t(n));
                    for (int64_t k = 0; k < n; ++k) s += seq->s;
                    return Value::string(std::move(s));
                }
                if (n > 0 && seq->list->size() > (size_t(1) << 20) / size_t(n))
                    return resource_exhausted("list repetition longer than 1M items");
                List l;
                for (int64_t k = 0; k < n; ++k) l.insert(l.end(), seq->list->begin(), seq->list->end());
                return Value::make_list(std::move(l));
            }
        }
        auto num = [](const Value& v) -> std::optional<Value> {
            if (v.is_number()) return v;
            if (v.kind == Value::Kind::kBool) return Value::integer(v.b);
            return std::nullopt;
        };
        auto x = num(a), y = num(b);
        if (!x || !y) return type_error();
        bool ints = x->kind == Value::Kind::kInt && y->kind == Value::Kind::kInt;
        double p = x->as_double(), q = y->as_double();
        // Python integers are unbounded; Volt's are 64-bit and overflow is an error rather than a wrong number.
        int64_t r = 0;
        if (op == "+") {
            if (!ints) return Value::number(p + q);
            if (__builtin_add_overflow(x->i, y->i, &r)) return invalid_argument("integer overflow");
            return Value::integer(r);
        }
        if (op == "-") {
            if (!ints) return Value::number(p - q);
            if (__builtin_sub_overflow(x->i, y->i, &r)) return invalid_argument("integer overflow");
            return Value::integer(r);
        }
        if (op == "*") {
            if (!ints) return Value::number(p * q);
            if (__builtin_mul_overflow(x->i, y->i, &r)) return invalid_argument("integer overflow");
            return Value::integer(r);
        }
        if (op == "**") {
            if (ints && y->i >= 0) {
                int64_t acc = 1;
                for (int64_t k = 0; k < y->i; ++k) {
                    if (__builtin_mul_overflow(acc, x->i, &acc)) return invalid_argument("integer overflow");
                    if (acc == 0 || acc == 1) break;  // 0**n, 1**n
                    if (acc == -1 && k + 1 < y->i) {   // (-1)**n
                        acc = (y->i % 2 == 0) ? 1 : -1;
                        break;
                    }
                }
                return Value::integer(acc);
            }
            return Value::number(std::pow(p, q));
        }
        if (q == 0) return invalid_argument("division by zero");
        if (ints && x->i == INT64_MIN && y->i == -1) return invalid_argument("integer overflow");
        if (op == "/") return Value::number(p / q);
        if (op == "//") {
            if (ints) {
                int64_t d = x->i / y->i;
                if ((x->i % y->i != 0) && ((x->i < 0) != (y->i < 0))) --d;
                return Value::integer(d);
            }
            return Value::number(std::floor(p / q));
        }
        if (op == "%") {
            if (ints) {
                int64_t m = x->i % y->i;
                if (m != 0 && ((m < 0) != (y->i < 0))) m += y->i;
                return Value::integer(m);
            }
            double m = std::fmod(p, q);
            if (m != 0 && ((m < 0) != (q < 0))) m += q;
            return Value::number(m);
        }
        return type_error();
    }

    const std::string& where_;
    std::vector<std::unordered_map<std::string, Value>> frames_;
    size_t loop_depth_ = 0;
    int call_depth_ = 0;
};

}  // namespace

Expected<std::string> render(const Template& tmpl, const Value& variables, const std::string& where) {
    Interpreter interp(variables, where);
    return interp.run(tmpl);
}

}  // namespace volt::text::jinja
