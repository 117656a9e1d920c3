// TodoMVC client for the Flowstate back end in functions/todos.js. The server
// holds the list; every answer carries the whole list and the page redraws
// from it. Requests are sent one after another, so answers arrive in order.
(function () {
  "use strict";

  const ENTER = "Enter";
  const ESCAPE = "Escape";

  const $ = (selector) => document.querySelector(selector);
  const newTodo = $(".new-todo");
  const main = $(".main");
  const toggleAll = $(".toggle-all");
  const todoList = $(".todo-list");
  const footer = $(".footer");
  const count = $(".todo-count");
  const clearCompleted = $(".clear-completed");
  const problemBox = $(".problem");

  const listId = chooseListId();
  const api = "api/lists/" + encodeURIComponent(listId);
  $(".list-id").textContent = listId;

  let todos = [];
  let filter = filterFromHash();
  let queue = Promise.resolve();

  // The list id: ?list=ID in the address, else the one this browser used
  // before, else a new one. Open the same ?list= elsewhere to share a list.
  function chooseListId() {
    const stored = "flowstate-todomvc-list";
    let id = new URLSearchParams(location.search).get("list") || localStorage.getItem(stored);
    if (!id) {
      id = window.crypto && crypto.randomUUID
        ? crypto.randomUUID()
        : Math.random().toString(36).slice(2) + Date.now().toString(36);
    }
    localStorage.setItem(stored, id);
    return id;
  }

  function filterFromHash() {
    const route = location.hash.replace(/^#\/?/, "");
    return route === "active" || route === "completed" ? route : "all";
  }

  // Queues one API call; redraws from its answer or shows its problem.
  function send(method, path, body) {
    queue = queue.then(async () => {
      try {
        const response = await fetch(api + path, {
          method,
          headers: body === undefined ? {} : { "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        let answer = null;
        try { answer = text ? JSON.parse(text) : null; } catch (e) { answer = { detail: text }; }
        if (!response.ok) {
          showProblem(answer && (answer.detail || answer.title) || "the server answered " + response.status);
          return;
        }
        showProblem("");
        if (answer && Array.isArray(answer.todos)) todos = answer.todos;
        render();
      } catch (e) {
        showProblem("cannot reach the server: " + e.message);
      }
    });
    return queue;
  }

  function showProblem(text) {
    problemBox.textContent = text;
    problemBox.hidden = !text;
  }

  function render() {
    const visible = todos.filter((t) =>
      filter === "active" ? !t.completed : filter === "completed" ? t.completed : true);
    todoList.replaceChildren(...visible.map(todoItem));

    const left = todos.filter((t) => !t.completed).length;
    const done = todos.length - left;
    main.hidden = footer.hidden = todos.length === 0;
    toggleAll.checked = todos.length > 0 && left === 0;
    const strong = document.createElement("strong");
    strong.textContent = String(left);
    count.replaceChildren(strong, document.createTextNode(left === 1 ? " item left" : " items left"));
    clearCompleted.hidden = done === 0;
    for (const a of footer.querySelectorAll(".filters a")) {
      a.classList.toggle("selected", a.getAttribute("href") === "#/" + (filter === "all" ? "" : filter));
    }
  }

  function todoItem(todo) {
    const li = document.createElement("li");
    li.dataset.id = todo.id;
    if (todo.completed) li.classList.add("completed");

    const view = document.createElement("div");
    view.className = "view";
    const toggle = document.createElement("input");
    toggle.className = "toggle";
    toggle.type = "checkbox";
    toggle.checked = todo.completed;
    toggle.addEventListener("change", () => send("PATCH", "/todos/" + todo.id, { completed: toggle.checked }));
    const label = document.createElement("label");
    label.textContent = todo.title;
    label.addEventListener("dblclick", () => startEditing(li, todo));
    const destroy = document.createElement("button");
    destroy.className = "destroy";
    destroy.setAttribute("aria-label", "Delete");
    destroy.addEventListener("click", () => send("DELETE", "/todos/" + todo.id));
    view.append(toggle, label, destroy);
    li.append(view);
    return li;
  }

  function startEditing(li, todo) {
    li.classList.add("editing");
    const edit = document.createElement("input");
    edit.className = "edit";
    edit.value = todo.title;
    let finished = false;
    const finish = (save) => {
      if (finished) return;
      finished = true;
      li.classList.remove("editing");
      edit.remove();
      if (!save) return;
      const title = edit.value.trim();
      if (title === "") send("DELETE", "/todos/" + todo.id);
      else if (title !== todo.title) send("PATCH", "/todos/" + todo.id, { title });
    };
    edit.addEventListener("keydown", (e) => {
      if (e.key === ENTER) finish(true);
      else if (e.key === ESCAPE) finish(false);
    });
    edit.addEventListener("blur", () => finish(true));
    li.append(edit);
    edit.focus();
    edit.setSelectionRange(edit.value.length, edit.value.length);
  }

  newTodo.addEventListener("keydown", (e) => {
    if (e.key !== ENTER) return;
    const title = newTodo.value.trim();
    if (title === "") return;
    newTodo.value = "";
    send("POST", "/todos", { title });
  });
  toggleAll.addEventListener("change", () => send("POST", "/toggle-all", { completed: toggleAll.checked }));
  clearCompleted.addEventListener("click", () => send("POST", "/clear-completed"));
  window.addEventListener("hashchange", () => {
    filter = filterFromHash();
    render();
  });

  render();
  send("GET", "");
})();
