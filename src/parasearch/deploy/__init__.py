"""From a chosen placement to the files that start and measure it: `parasearch deploy`.

`topology` lays the plan's replicas onto nodes and GPUs as engine servers (engine-neutral),
`memory` turns the oracle's memory plan into each engine's memory fraction, and one module per
engine (`vllm`, `sglang`, `trtllm`) spells the launch, router and benchmark commands the way
that engine's own argument parser accepts them. `build` ties them together and writes
launch.sh, bench.sh, plan.json and, for TensorRT-LLM, its extra_llm_api_options YAML files.
"""
