"""The LLM backends' built-in names (plain data, read by the registries in ``rewardlab.core``)."""

LLM_BACKENDS = {
    "openai": "rewardlab.llm.openai:OpenAIBackend",
    "local": "rewardlab.llm.local:LocalBackend",
    "scripted": "rewardlab.llm.scripted:ScriptedBackend",
}
