"""Where text comes from: the backend protocol, the OpenAI-compatible client, managed vLLM servers, Ray Data,
a fake for tests, the bundled model, and the serving lifecycle (start, restart, stop)."""
