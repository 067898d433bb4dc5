"""Records sample answers of the real servers for the response-inspection false-positive test.

Usage: record.py NAME -- CMD ARGS...   (with the Python SDK venv of testdata/servers/python;
testdata/results/README.md has the exact commands)
Connects over stdio with the official Python SDK client, calls the tools, prompts and resources
listed for NAME in SAMPLES below, and prints one JSON document: every answer (`result`, or the
JSON-RPC `error` the session raised) and every notification the server sent (logging, progress).
Answers are the SDK's models dumped by alias (what came over the wire, less absent fields).
"""
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

DATA = "data:text/plain;base64,SGVsbG8sIGJlbmNobWFyayE="
SAMPLES = {
    "everything": {
        "tools": [
            ["toggle-simulated-logging", {}],
            ["echo", {"message": "Hello from the mcplock false-positive benchmark"}],
            ["get-annotated-message", {"messageType": "error", "includeImage": True}],
            ["get-annotated-message", {"messageType": "success", "includeImage": False}],
            ["get-annotated-message", {"messageType": "debug", "includeImage": False}],
            ["get-resource-links", {"count": 10}],
            ["get-resource-reference", {"resourceId": 1, "resourceType": "Text"}],
            ["get-resource-reference", {"resourceId": 2, "resourceType": "Blob"}],
            ["get-structured-content", {"location": "Chicago"}],
            ["get-structured-content", {"location": "Los Angeles"}],
            ["get-sum", {"a": 2, "b": 40}],
            ["get-tiny-image", {}],
            ["gzip-file-as-resource", {"name": "hello.txt.gz", "data": DATA, "outputType": "resourceLink"}],
            ["trigger-long-running-operation", {"duration": 2, "steps": 2}],
            ["sleep", 11],
            ["get-sum", {"a": "two", "b": 40}],
            ["no-such-tool", {}],
            ["toggle-simulated-logging", {}],
        ],
        "prompts": [
            ["simple-prompt", {}],
            ["args-prompt", {"city": "Paris", "state": "Texas"}],
            ["completable-prompt", {"department": "Engineering", "name": "Alice"}],
            ["resource-prompt", {"resourceType": "Text", "resourceId": "3"}],
        ],
        "resources": [
            "demo://resource/static/document/architecture.md",
            "demo://resource/static/document/extension.md",
            "demo://resource/static/document/features.md",
            "demo://resource/static/document/how-it-works.md",
            "demo://resource/static/document/instructions.md",
            "demo://resource/static/document/startup.md",
            "demo://resource/static/document/structure.md",
            "demo://resource/dynamic/text/1",
            "demo://resource/dynamic/blob/2",
            "demo://resource/no-such",
        ],
    },
    "python-sdk": {
        "tools": [
            ["read_file", {"path": "notes/todo.txt"}],
            ["delete_file", {"path": "build", "recursive": True}],
            ["add", {"a": 1.5, "b": 2}],
            ["add", {"a": "x"}],
            ["no-such-tool", {}],
        ],
        "prompts": [["review", {"code": "print(1)"}], ["no-such-prompt", {}]],
        "resources": ["config://app", "users://42/profile", "nothing://here"],
    },
    "sqlite": {
        "tools": [
            ["create_table", {"query": "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)"}],
            ["write_query", {"query": "INSERT INTO products (name, price) VALUES ('Widget', 9.5), ('Gadget', 12)"}],
            ["read_query", {"query": "SELECT * FROM products ORDER BY price DESC"}],
            ["list_tables", {}],
            ["describe_table", {"table_name": "products"}],
            ["append_insight", {"insight": "Gadgets sell at a higher price than widgets."}],
            ["read_query", {"query": "SELECT * FROM missing"}],
            ["write_query", {"query": "SELECT 1"}],
        ],
        "prompts": [["mcp-demo", {"topic": "retail sales"}]],
        "resources": ["memo://insights"],
    },
    "tailwind": {
        "tools": [
            ["get_tailwind_utilities", {"category": "layout"}],
            ["get_tailwind_utilities", {"property": "margin"}],
            ["get_tailwind_colors", {"colorName": "blue", "includeShades": True}],
            ["get_tailwind_config_guide", {"framework": "react", "topic": "installation"}],
            ["search_tailwind_docs", {"query": "flex", "limit": 5}],
            ["install_tailwind", {"framework": "nextjs", "packageManager": "npm", "includeTypescript": True}],
            ["convert_css_to_tailwind", {"css": ".btn { margin: 1rem; color: #fff; display: flex; }", "mode": "classes"}],
            ["generate_color_palette", {"baseColor": "#3B82F6", "name": "brand", "shades": [50, 500, 900]}],
            ["generate_component_template", {"componentType": "button", "style": "modern", "darkMode": True, "responsive": True}],
            ["generate_component_template", {"componentType": "modal", "style": "minimal"}],
            ["get_tailwind_colors", {"colorName": "no-such-colour"}],
        ],
        "prompts": [],
        "resources": [],
    },
}


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main() -> None:
    name = sys.argv[1]
    argv = sys.argv[sys.argv.index("--") + 1:]
    samples = SAMPLES[name]
    notifications = []
    answers = []

    async def on_log(params):
        notifications.append({"method": "notifications/message", "params": dump(params)})

    async def on_progress(progress, total, message):
        pass  # asks for progress (a token); the notifications are recorded by on_message

    async def on_message(message):
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if method and method != "notifications/message" and hasattr(root, "params"):
            params = root.params
            notifications.append({"method": method, "params": dump(params) if params else {}})

    async def ask(method, params, call):
        entry = {"method": method, "params": params}
        try:
            entry["result"] = dump(await call)
        except Exception as error:  # the server's JSON-RPC error
            data = getattr(error, "error", None)
            entry["error"] = dump(data) if data is not None else {"message": str(error)}
        answers.append(entry)

    server = StdioServerParameters(command=argv[0], args=argv[1:])
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write, logging_callback=on_log, message_handler=on_message) as session:
            await session.initialize()
            for tool, arguments in samples["tools"]:
                if tool == "sleep":  # let simulated logging send a few messages
                    await asyncio.sleep(arguments)
                    continue
                params = {"name": tool, "arguments": arguments}
                call = session.call_tool(tool, arguments, progress_callback=on_progress)
                await ask("tools/call", params, call)
            for prompt, arguments in samples["prompts"]:
                params = {"name": prompt, "arguments": arguments}
                await ask("prompts/get", params, session.get_prompt(prompt, arguments))
            for uri in samples["resources"]:
                await ask("resources/read", {"uri": uri}, session.read_resource(uri))
            await asyncio.sleep(1)
    print(json.dumps({"server": name, "answers": answers, "notifications": notifications}, indent=1, sort_keys=True, ensure_ascii=False))


asyncio.run(main())
