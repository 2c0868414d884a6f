"""jetwire's fuzzer: corpus-free mutators, an oracle, and targets for decoding, streams, frames,
threads, the 9P session and amplification. Run ``python -m fuzz --help``; ``docs/fuzzing.md``
says what each part checks. Not shipped: it lives beside the package, like ``benchmarks``."""
