// The editor (CodeMirror 6 with its languages): a bundle of its own,
// /editor.js, loaded when a file is first opened, so that the stacks draw
// without parsing ~550 KiB of editor code first (ui-server/web/README.md).
// It sets `window.flowstateEditor`; files.ts reaches it through
// loadEditor() (editor_loader.ts).
import type { CompletionSource } from "@codemirror/autocomplete";
import { javascript } from "@codemirror/lang-javascript";
import { json as jsonLang } from "@codemirror/lang-json";
import { python } from "@codemirror/lang-python";
import { yaml } from "@codemirror/lang-yaml";
import { type Diagnostic, setDiagnostics } from "@codemirror/lint";
import { EditorState, type Extension } from "@codemirror/state";
import { EditorView, basicSetup } from "codemirror";
import type { EditorHandle, EditorModule, Problem } from "./editor_loader";

function language(path: string, complete: CompletionSource | null): Extension {
  const extra = complete ? EditorState.languageData.of(() => [{ autocomplete: complete }]) : [];
  if (/\.(m?js|ts)$/.test(path)) return javascript();
  if (path.endsWith(".py")) return python();
  if (/\.ya?ml$/.test(path)) return [yaml(), extra];
  if (path.endsWith(".json")) return [jsonLang(), extra];
  return [];
}

function diagnostics(state: EditorState, problems: Problem[]): Diagnostic[] {
  return problems.map((p) => {
    const line = state.doc.line(Math.min(Math.max(p.line, 1), state.doc.lines));
    return { from: line.from, to: line.to, severity: "error", message: p.text };
  });
}

function createEditor(
  parent: HTMLElement,
  path: string,
  doc: string,
  onChange: (text: string) => void,
  complete: CompletionSource | null,
): EditorHandle {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        basicSetup,
        language(path, complete),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) onChange(u.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    destroy: () => view.destroy(),
    setProblems: (problems) => view.dispatch(setDiagnostics(view.state, diagnostics(view.state, problems))),
  };
}

const module: EditorModule = { createEditor };
(window as unknown as { flowstateEditor: EditorModule }).flowstateEditor = module;
