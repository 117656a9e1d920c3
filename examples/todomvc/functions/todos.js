// The TodoMVC API. One state per todo list: ctx.key is the list id (the
// {key} path parameter), the state is { nextId, todos: [{ id, title, completed }] }.
// Every answer carries the whole list, so the page can redraw from it.

const MAX_TITLE = 500;
const MAX_TODOS = 1000;

export default function (input, state, ctx) {
  const list = state || { nextId: 1, todos: [] };
  const body = input.body && typeof input.body === "object" ? input.body : {};

  switch (input.route) {
    case "GET /api/lists/{key}":
      return { output: { status: 200, body: { todos: list.todos } } }; // no state: unchanged

    case "POST /api/lists/{key}/todos": {
      const title = checkTitle(body.title);
      if (title.problem) return title.problem;
      if (list.todos.length >= MAX_TODOS)
        return problem(409, "List full", `a list holds at most ${MAX_TODOS} todos`);
      const todo = { id: String(list.nextId), title: title.value, completed: false };
      const next = { nextId: list.nextId + 1, todos: [...list.todos, todo] };
      return reply(201, next, { todo });
    }

    case "PATCH /api/lists/{key}/todos/{id}": {
      const found = find(list, input.params.id);
      if (found.problem) return found.problem;
      const changed = { ...found.todo };
      if (body.title === undefined && body.completed === undefined)
        return problem(422, "Nothing to change", "send `title` (a string) and/or `completed` (true or false)");
      if (body.title !== undefined) {
        const title = checkTitle(body.title);
        if (title.problem) return title.problem;
        changed.title = title.value;
      }
      if (body.completed !== undefined) {
        if (typeof body.completed !== "boolean")
          return problem(422, "Invalid completed", `\`completed\` must be true or false, got ${JSON.stringify(body.completed)}`);
        changed.completed = body.completed;
      }
      const next = { ...list, todos: list.todos.map((t) => (t.id === changed.id ? changed : t)) };
      return reply(200, next, { todo: changed });
    }

    case "DELETE /api/lists/{key}/todos/{id}": {
      const found = find(list, input.params.id);
      if (found.problem) return found.problem;
      return reply(200, { ...list, todos: list.todos.filter((t) => t.id !== found.todo.id) });
    }

    case "POST /api/lists/{key}/toggle-all": {
      // Without a body: complete all, unless all are complete already (TodoMVC's toggle-all).
      const completed =
        typeof body.completed === "boolean" ? body.completed : !list.todos.every((t) => t.completed);
      return reply(200, { ...list, todos: list.todos.map((t) => ({ ...t, completed })) });
    }

    case "POST /api/lists/{key}/clear-completed":
      return reply(200, { ...list, todos: list.todos.filter((t) => !t.completed) });

    default:
      return problem(404, "Unknown route", `no handler for ${input.route}`);
  }
}

// The answer for `list`, which also becomes the new state. A list that was
// only read and never written keeps no state.
function reply(status, list, extra = {}) {
  const output = { status, body: { todos: list.todos, ...extra } };
  return list.todos.length === 0 && list.nextId === 1 ? { output } : { output, state: list };
}

// An RFC 9457 problem the page shows to the user; the state is unchanged.
function problem(status, title, detail) {
  return {
    output: {
      status,
      headers: { "content-type": "application/problem+json" },
      body: { type: "about:blank", title, status, detail },
    },
  };
}

function checkTitle(title) {
  if (typeof title !== "string")
    return { problem: problem(422, "Missing title", "send a JSON body with `title`, a non-empty string") };
  const value = title.trim();
  if (value === "") return { problem: problem(422, "Empty title", "a todo's title must not be blank") };
  if (value.length > MAX_TITLE)
    return { problem: problem(422, "Title too long", `a title has at most ${MAX_TITLE} characters, got ${value.length}`) };
  return { value };
}

function find(list, id) {
  const todo = list.todos.find((t) => t.id === id);
  return todo ? { todo } : { problem: problem(404, "No such todo", `list has no todo with id ${JSON.stringify(id)}`) };
}
