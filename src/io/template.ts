/**
 * Chat templates rendered with a budget. @huggingface/jinja has no limit of its own: `range(1e8)` built 10^8
 * runtime values (3-5 GB, then a segfault) and `{% set s = s + s %}` doubles a string per step. During a budgeted
 * render the interpreter counts evaluation steps (a list value costs ten steps an item each time it is evaluated: a
 * loop over it), refuses a range() longer than a cap before building it, and refuses any string or list value past a
 * cap as soon as it is made; each is a one-line error.
 */
import { Interpreter, type Template } from '@huggingface/jinja';

/** the limits of one render */
export const TEMPLATE_BUDGET = {
  /** expression and statement evaluations, plus the items of every list value evaluated (a for loop's cost) */
  steps: 2_000_000,
  /** items of a range() or of any list value */
  items: 100_000,
  /** characters of any string value, the output included */
  chars: 16 * 2 ** 20,
};

/** a render went past TEMPLATE_BUDGET */
export class TemplateBudgetError extends Error {}

interface Node { type: string; callee?: { type: string; value?: unknown }; args?: unknown[] }
interface Value { type: string; value: unknown }
type Proto = {
  evaluate(node: Node | undefined, env: unknown): Value;
  evaluateCallExpression(node: Node, env: unknown): Value;
  evaluateArguments(args: unknown[], env: unknown): [Value[], Map<string, Value>];
};

let active: { steps: number } | null = null;

const proto = Interpreter.prototype as unknown as Proto;
const evaluate = proto.evaluate;
const evaluateCall = proto.evaluateCallExpression;

proto.evaluate = function (node, env) {
  if (active && --active.steps < 0) throw new TemplateBudgetError(`the template took more than ${TEMPLATE_BUDGET.steps} steps`);
  const v = evaluate.call(this, node, env);
  if (active && v) {
    if (v.type === 'StringValue' && (v.value as string).length > TEMPLATE_BUDGET.chars) {
      throw new TemplateBudgetError(`the template made a string of more than ${TEMPLATE_BUDGET.chars} characters`);
    }
    if (v.type === 'ArrayValue') {
      const n = (v.value as unknown[]).length;
      if (n > TEMPLATE_BUDGET.items) throw new TemplateBudgetError(`the template made a list of more than ${TEMPLATE_BUDGET.items} items`);
      // a for loop sets up a scope and a `loop` object per item (about 10 µs, some ten steps' worth) before running its
      // body: charge the items each time the list is evaluated
      active.steps -= 10 * n;
    }
  }
  return v;
};

/** range(stop) / range(start, stop[, step]) with its length checked before the list is built */
proto.evaluateCallExpression = function (node, env) {
  if (!active || node.callee?.type !== 'Identifier' || node.callee.value !== 'range') return evaluateCall.call(this, node, env);
  const [args, kwargs] = this.evaluateArguments(node.args ?? [], env);
  if (kwargs.size > 0) return evaluateCall.call(this, node, env);
  const n = args.map((a) => a.value);
  const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1];
  if ([start, stop, step].some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw new TemplateBudgetError('range() needs finite numbers');
  const len = Math.ceil(((stop as number) - (start as number)) / (step as number));
  if (len > TEMPLATE_BUDGET.items) throw new TemplateBudgetError(`range() of ${len} items, over the ${TEMPLATE_BUDGET.items} limit`);
  const fn = this.evaluate(node.callee as Node, env);
  if (fn.type !== 'FunctionValue') throw new Error(`Cannot call something that is not a function: got ${fn.type}`);
  return (fn.value as (a: Value[], e: unknown) => Value)(args, env);
};

/** Template.render within TEMPLATE_BUDGET (a TemplateBudgetError past it) */
export function renderBudgeted(t: Template, items: Record<string, unknown>): string {
  const outer = active;
  active = { steps: TEMPLATE_BUDGET.steps };
  try {
    const s = t.render(items);
    if (s.length > TEMPLATE_BUDGET.chars) throw new TemplateBudgetError(`the template rendered more than ${TEMPLATE_BUDGET.chars} characters`);
    return s;
  } finally {
    active = outer;
  }
}
