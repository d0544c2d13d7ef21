
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'swift' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'swift'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'swift' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('download', 'download', [CompletionResultType]::ParameterValue, 'Fetch a model or dataset from the Hugging Face Hub or ModelScope')
            [CompletionResult]::new('estimate-vram', 'estimate-vram', [CompletionResultType]::ParameterValue, 'Predict the peak memory of a job and decide whether it fits')
            [CompletionResult]::new('estimate', 'estimate', [CompletionResultType]::ParameterValue, 'Predict the peak memory of a job and decide whether it fits')
            [CompletionResult]::new('infer', 'infer', [CompletionResultType]::ParameterValue, 'Generate from the terminal, or serve an OpenAI-compatible API')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'swift;download' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Model id (same as the positional id)')
            [CompletionResult]::new('--dataset', '--dataset', [CompletionResultType]::ParameterName, 'Dataset short name (see --list-datasets) or dataset id')
            [CompletionResult]::new('--hub', '--hub', [CompletionResultType]::ParameterName, 'Which hub (default: the id''s `hf::`/`ms::` prefix, else USE_HF, else hf)')
            [CompletionResult]::new('--repo-type', '--repo-type', [CompletionResultType]::ParameterName, 'Repository type of the positional id')
            [CompletionResult]::new('--revision', '--revision', [CompletionResultType]::ParameterName, 'Branch, tag or commit (default main on hf, master on ModelScope)')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Only files matching this glob (repeatable; `*` crosses `/`)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Skip files matching this glob (repeatable)')
            [CompletionResult]::new('--local-dir', '--local-dir', [CompletionResultType]::ParameterName, 'Write plain files into DIR instead of the cache')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache root (default HF_HUB_CACHE, or MODELSCOPE_CACHE for ModelScope)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token (default HF_TOKEN / MODELSCOPE_API_TOKEN)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'Hub endpoint URL (default HF_ENDPOINT / MODELSCOPE_DOMAIN)')
            [CompletionResult]::new('--max-workers', '--max-workers', [CompletionResultType]::ParameterName, 'Files fetched at once')
            [CompletionResult]::new('--connections', '--connections', [CompletionResultType]::ParameterName, 'Byte-range connections per large file')
            [CompletionResult]::new('--part-size-mb', '--part-size-mb', [CompletionResultType]::ParameterName, 'Smallest byte range per connection, in MiB')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'A user dataset registry file (default SWIFT_DATASET_REGISTRY or ~/.config/swift/datasets.json)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Resolve from the cache only (also HF_HUB_OFFLINE=1)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Download again even when the cache has the files')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result (snapshot path and files) as JSON on stdout')
            [CompletionResult]::new('--list-datasets', '--list-datasets', [CompletionResultType]::ParameterName, 'Print the dataset registry and exit')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;estimate-vram' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'What the job is; `auto` lets the planner choose LoRA or QLoRA')
            [CompletionResult]::new('--dtype', '--dtype', [CompletionResultType]::ParameterName, 'Weight and activation dtype; `auto` picks bf16 where the device has it')
            [CompletionResult]::new('--quant-bits', '--quant-bits', [CompletionResultType]::ParameterName, 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Sequences per device per step (default: the planner''s choice under `--method auto`, else 1)')
            [CompletionResult]::new('--seq-len', '--seq-len', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Inference: tokens generated after the prompt')
            [CompletionResult]::new('--lora-rank', '--lora-rank', [CompletionResultType]::ParameterName, 'LoRA rank')
            [CompletionResult]::new('--target-modules', '--target-modules', [CompletionResultType]::ParameterName, 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear')
            [CompletionResult]::new('--gradient-checkpointing', '--gradient-checkpointing', [CompletionResultType]::ParameterName, 'Recompute activations in backward (default: on; under `--method auto` only when needed)')
            [CompletionResult]::new('--optimizer', '--optimizer', [CompletionResultType]::ParameterName, 'Optimizer')
            [CompletionResult]::new('--attention', '--attention', [CompletionResultType]::ParameterName, 'Attention implementation (eager materialises the score matrix)')
            [CompletionResult]::new('--lora-dropout', '--lora-dropout', [CompletionResultType]::ParameterName, 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer''s input)')
            [CompletionResult]::new('--loss-impl', '--loss-impl', [CompletionResultType]::ParameterName, 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers'' default fp32 upcast)')
            [CompletionResult]::new('--gpus', '--gpus', [CompletionResultType]::ParameterName, 'Number of GPUs the job is spread over')
            [CompletionResult]::new('--zero', '--zero', [CompletionResultType]::ParameterName, 'DeepSpeed ZeRO stage for multi-GPU runs')
            [CompletionResult]::new('--effective-batch', '--effective-batch', [CompletionResultType]::ParameterName, 'Sequences per optimizer step the planner aims for under `--method auto`')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON object instead of a table')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;estimate' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'What the job is; `auto` lets the planner choose LoRA or QLoRA')
            [CompletionResult]::new('--dtype', '--dtype', [CompletionResultType]::ParameterName, 'Weight and activation dtype; `auto` picks bf16 where the device has it')
            [CompletionResult]::new('--quant-bits', '--quant-bits', [CompletionResultType]::ParameterName, 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Sequences per device per step (default: the planner''s choice under `--method auto`, else 1)')
            [CompletionResult]::new('--seq-len', '--seq-len', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Inference: tokens generated after the prompt')
            [CompletionResult]::new('--lora-rank', '--lora-rank', [CompletionResultType]::ParameterName, 'LoRA rank')
            [CompletionResult]::new('--target-modules', '--target-modules', [CompletionResultType]::ParameterName, 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear')
            [CompletionResult]::new('--gradient-checkpointing', '--gradient-checkpointing', [CompletionResultType]::ParameterName, 'Recompute activations in backward (default: on; under `--method auto` only when needed)')
            [CompletionResult]::new('--optimizer', '--optimizer', [CompletionResultType]::ParameterName, 'Optimizer')
            [CompletionResult]::new('--attention', '--attention', [CompletionResultType]::ParameterName, 'Attention implementation (eager materialises the score matrix)')
            [CompletionResult]::new('--lora-dropout', '--lora-dropout', [CompletionResultType]::ParameterName, 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer''s input)')
            [CompletionResult]::new('--loss-impl', '--loss-impl', [CompletionResultType]::ParameterName, 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers'' default fp32 upcast)')
            [CompletionResult]::new('--gpus', '--gpus', [CompletionResultType]::ParameterName, 'Number of GPUs the job is spread over')
            [CompletionResult]::new('--zero', '--zero', [CompletionResultType]::ParameterName, 'DeepSpeed ZeRO stage for multi-GPU runs')
            [CompletionResult]::new('--effective-batch', '--effective-batch', [CompletionResultType]::ParameterName, 'Sequences per optimizer step the planner aims for under `--method auto`')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON object instead of a table')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;infer' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`, `hf::org/name`, `ms::org/name`) fetched first')
            [CompletionResult]::new('--adapter', '--adapter', [CompletionResultType]::ParameterName, 'A PEFT LoRA adapter folder applied without merging (repeatable)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'The prompt (otherwise read from stdin when it is not a terminal)')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'The prompt (otherwise read from stdin when it is not a terminal)')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'A system message for the chat template')
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'Use a built-in chat template instead of the model''s (chatml, llama3, mistral, qwen, ...)')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Most tokens to generate (default: until the end of the context window)')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Sampling temperature; 0 = greedy. Default: the model''s generation_config.json when it asks for sampling, else 0 (greedy)')
            [CompletionResult]::new('--top-k', '--top-k', [CompletionResultType]::ParameterName, 'Sample only among the K most likely tokens (0 = off; default: generation_config.json, else off)')
            [CompletionResult]::new('--top-p', '--top-p', [CompletionResultType]::ParameterName, 'Nucleus sampling: the smallest set of tokens with mass >= P (1 = off; default: generation_config.json, else off)')
            [CompletionResult]::new('--min-p', '--min-p', [CompletionResultType]::ParameterName, 'Drop tokens less likely than P times the most likely one (0 = off)')
            [CompletionResult]::new('--repetition-penalty', '--repetition-penalty', [CompletionResultType]::ParameterName, 'Penalise tokens already seen, as transformers does (1 = off; default: generation_config.json, else off)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the sampler: the same seed gives the same text')
            [CompletionResult]::new('--stop', '--stop', [CompletionResultType]::ParameterName, 'Stop when the text contains this string (repeatable; the string is not printed)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'CPU threads for the model (default: all cores)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'CPU threads for the model (default: all cores)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Feed the prompt as is, without the chat template')
            [CompletionResult]::new('--ignore-eos', '--ignore-eos', [CompletionResultType]::ParameterName, 'Do not stop at end-of-sequence tokens (for benchmarks)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object (text, finish_reason, token counts, speed) instead of streaming')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;help' {
            [CompletionResult]::new('download', 'download', [CompletionResultType]::ParameterValue, 'Fetch a model or dataset from the Hugging Face Hub or ModelScope')
            [CompletionResult]::new('estimate-vram', 'estimate-vram', [CompletionResultType]::ParameterValue, 'Predict the peak memory of a job and decide whether it fits')
            [CompletionResult]::new('infer', 'infer', [CompletionResultType]::ParameterValue, 'Generate from the terminal, or serve an OpenAI-compatible API')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'swift;help;download' {
            break
        }
        'swift;help;estimate-vram' {
            break
        }
        'swift;help;infer' {
            break
        }
        'swift;help;completions' {
            break
        }
        'swift;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
