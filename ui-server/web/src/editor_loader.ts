// Loads the editor bundle (/editor.js, editor.ts) once, on first use.
import type { CompletionSource } from "@codemirror/autocomplete";

export interface Problem {
  line: number;
  text: string;
}

export interface EditorHandle {
  destroy(): void;
  setProblems(problems: Problem[]): void;
}

export interface EditorModule {
  createEditor(
    parent: HTMLElement,
    path: string,
    doc: string,
    onChange: (text: string) => void,
    complete: CompletionSource | null,
  ): EditorHandle;
}

let loading: Promise<EditorModule> | null = null;

export function loadEditor(): Promise<EditorModule> {
  loading ??= new Promise<EditorModule>((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/editor.js";
    script.onload = () => resolve((window as unknown as { flowstateEditor: EditorModule }).flowstateEditor);
    script.onerror = () => {
      loading = null;
      reject(new Error("the editor (/editor.js) could not be loaded"));
    };
    document.head.append(script);
  });
  return loading;
}
