/**
 * The planner behind the dashboard's planner view: POST /moekit/plan with a spec (the YAML/JSON spec's
 * sections as JSON: model, hardware, parallel, training) and an action:
 *   simulate → step time, its breakdown, memory per device;  search → the ranked layouts;
 *   export → the launch command (engine megatron | mindspeed).
 * GET /moekit/plan/presets lists the model and hardware presets. A bad spec is a 400 naming the field,
 * as `moekit plan` names it.
 */
import type { FastifyInstance } from 'fastify';
import { exportPlan, type Engine } from '../plan/export.js';
import { presetNames } from '../plan/hardware.js';
import { MODEL_PRESETS, modelPresetNames } from '../plan/models.js';
import { search } from '../plan/search.js';
import { simulate, type SimResult } from '../plan/simulate.js';
import { resolveSpec } from '../plan/spec.js';
import { MoekitError } from '../util/errors.js';
import { ApiError, badField } from './errors.js';
import { bodyObject, describe } from './request.js';

function sim(r: SimResult) {
  return {
    step_time_s: r.step_time_s, tokens_per_s: r.tokens_per_s, tokens_per_s_per_device: r.tokens_per_s_per_device, mfu: r.mfu, hfu: r.hfu,
    memory_gib_per_device: r.memory_gib_per_device, memory_breakdown_gib: r.memory_breakdown_gib, fits: r.fits, breakdown: r.breakdown,
    microbatches: r.microbatches, parallel: r.parallel,
  };
}

export function planRoute(app: FastifyInstance): void {
  app.get('/moekit/plan/presets', async () => ({ models: modelPresetNames().map((n) => ({ name: n, source: MODEL_PRESETS[n].source })), hardware: presetNames() }));
  app.post('/moekit/plan', async (req) => {
    const b = bodyObject(req.body);
    const action = b['action'];
    if (action !== 'simulate' && action !== 'search' && action !== 'export') throw badField('action', `'action' must be simulate, search or export, got ${describe(action)}`);
    const raw = b['spec'];
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badField('spec', `'spec' must be an object {model, hardware, parallel, training}, got ${describe(raw)}`);
    try {
      const spec = resolveSpec(structuredClone(raw) as Record<string, unknown>, 'spec', { template: action === 'search' });
      if (action === 'simulate') return { action, result: sim(simulate(spec)) };
      if (action === 'export') {
        const engine = (b['engine'] ?? 'megatron') as Engine;
        return { action, result: exportPlan(spec, engine) };
      }
      const top = typeof b['top'] === 'number' && Number.isInteger(b['top']) && b['top'] > 0 ? Math.min(b['top'], 50) : 10;
      const r = search(spec, { top });
      return {
        action,
        result: {
          layouts_enumerated: r.layouts_enumerated, fitting_layouts: r.fitting_layouts, elapsed_s: r.elapsed_s, no_valid_layout: r.no_valid_layout ?? null,
          top: r.top.map((x) => ({ layout: x.layout, ...sim(x.result) })),
        },
      };
    } catch (e) {
      if (e instanceof MoekitError) throw new ApiError(400, e.oneLine(), 'invalid_request_error', e.file ? `spec.${e.file.replace(/^spec: /, '')}` : 'spec', 'invalid_spec');
      throw e;
    }
  });
}
