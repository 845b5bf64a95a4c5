# Dump every option string of Megatron-LM's argument parser (megatron/training/arguments.py) as JSON, for the test
# that holds `moekit plan export --engine megatron` to flags Megatron-LM accepts
# (test/plan/fixtures/megatron-lm-options.json: Megatron-LM commit d98e8a64ddf3, 2026-08-22, 877 options).
# Usage, on a machine with PyTorch: put Megatron-LM's `megatron/` package in DIR, then
#   python3 bench/plan/megatron_options.py OUT.json DIR
import argparse, json, sys
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else '.')
from megatron.training.arguments import add_megatron_arguments
p = argparse.ArgumentParser(allow_abbrev=False)
add_megatron_arguments(p)
opts = sorted({s for a in p._actions for s in a.option_strings if s.startswith('--')})
json.dump(opts, open(sys.argv[1], 'w'), indent=0)
print(len(opts), 'options')
