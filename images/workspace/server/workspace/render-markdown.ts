import MarkdownIt from 'markdown-it';

/**
 * The instructor's Markdown as HTML for the workspace page. Raw HTML in the source is escaped
 * (`html: false`) and markdown-it's validateLink refuses `javascript:`, `vbscript:`, `file:` and
 * most `data:` links, so nothing the instructor wrote runs. Rendered once on the seat server: the
 * page inserts the result and needs no Markdown code of its own.
 */
const md = new MarkdownIt({ html: false, linkify: true, typographer: false });

// Languages whose blocks a learner types into a shell: they get "run in terminal".
const SHELL = new Set(['', 'sh', 'bash', 'shell', 'console', 'terminal', 'zsh']);

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx]!;
  const lang = token.info.trim().split(/\s+/)[0]!.toLowerCase();
  const cls = lang ? ` class="language-${md.utils.escapeHtml(lang)}"` : '';
  const run = SHELL.has(lang)
    ? '<button type="button" data-action="run">Run in terminal</button>'
    : '';
  return (
    `<div class="code-block"><pre><code${cls}>${md.utils.escapeHtml(token.content)}</code></pre>` +
    `<div class="code-actions"><button type="button" data-action="copy">Copy</button>${run}</div></div>\n`
  );
};

// Links leave the workspace in a new tab, and tell the other site nothing about it.
const defaultLinkOpen =
  md.renderer.rules.link_open ??
  ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx]!.attrSet('target', '_blank');
  tokens[idx]!.attrSet('rel', 'noopener noreferrer');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

export function renderInstructions(markdown: string): string {
  return md.render(markdown);
}
