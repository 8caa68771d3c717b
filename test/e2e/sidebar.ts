// Reads and drives the extension's sidebar (the "Deposit and Main" tree) in the workbench page.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import { waitFor, type WaitOptions, type Workbench } from './harness';

const CONTAINER_BUTTON = '.activitybar .action-item .action-label[aria-label^="Python OTA Update"]';
const SIDEBAR = '.part.sidebar';
const ROWS = `${SIDEBAR} .pane-body .monaco-list-row`;
const WELCOME = `${SIDEBAR} .welcome-view-content`;

/** A tree row as shown: its label, description, decoration badge and nesting level. */
export interface TreeRow {
  label: string;
  description: string;
  /** The FileDecoration badge, such as "A"; '' when the row has none. */
  badge: string;
  /** 1 for the top level. */
  level: number;
  /** The item's tooltip, which VS Code also uses as the row's accessible label. */
  ariaLabel: string;
}

// Runs in the page; source text, because tsx's transform adds helpers that do not exist there.
const READ_ROWS_SOURCE = `(rows) => rows.map((row) => {
  const label = row.querySelector('.label-name');
  const description = row.querySelector('.label-description');
  const icon = row.querySelector('.monaco-icon-label');
  let badge = '';
  if (icon) {
    const content = getComputedStyle(icon, '::after').content;
    badge = content && content !== 'none' && content !== 'normal' ? content.replace(/^"|"$/g, '') : '';
  }
  return {
    label: label ? label.textContent.trim() : '',
    description: description ? description.textContent.trim() : '',
    badge,
    level: Number(row.getAttribute('aria-level') || '0'),
    ariaLabel: row.getAttribute('aria-label') || '',
    top: row.getBoundingClientRect().top,
  };
}).sort((a, b) => a.top - b.top)`;

export class Sidebar {
  constructor(private readonly workbench: Workbench) {}

  private get page() {
    return this.workbench.page;
  }

  /** Opens the extension's view container from the activity bar. */
  async open(): Promise<void> {
    const button = this.page.locator(CONTAINER_BUTTON);
    await button.waitFor({ state: 'visible' });
    const expanded = await button.getAttribute('aria-expanded').catch(() => null);
    if (expanded !== 'true') {
      await button.click();
    }
    await this.page.locator(`${SIDEBAR} .composite.title`).filter({ hasText: /Python OTA Update/i }).waitFor({ state: 'visible' });
  }

  /** Returns the rows rendered now, from top to bottom. */
  async rows(): Promise<TreeRow[]> {
    return this.page.locator(ROWS).evaluateAll(new Function(`return ${READ_ROWS_SOURCE}`)() as (rows: Element[]) => TreeRow[]);
  }

  /**
   * Rows under a section ("Deposit" or "Main"), in order. With several roots, `root` names the
   * root node of the section; labels are compared in Unicode normal form C.
   */
  async section(name: string, root?: string): Promise<TreeRow[]> {
    let rows = await this.rows();
    if (root !== undefined) {
      rows = childrenOf(rows, (row) => row.level === 1 && sameText(row.label, root));
    }
    return childrenOf(rows, (row) => row.level === (root === undefined ? 1 : 2) && row.label === name);
  }

  async describe(): Promise<string> {
    return (await this.rows())
      .map((row) => `${'  '.repeat(Math.max(0, row.level - 1))}${row.label}${row.description ? ` (${row.description})` : ''}${row.badge ? ` [${row.badge}]` : ''}`)
      .join('\n');
  }

  /** Waits until a row under `section` (of the root named `options.root`) satisfies `matches`, and returns it. */
  async waitForRow(section: string, description: string, matches: (row: TreeRow) => boolean, options: WaitOptions & { root?: string } = {}): Promise<TreeRow> {
    return waitFor(`${description} under ${section} in the sidebar`, async () => (await this.section(section, options.root)).find(matches), {
      ...options,
      describeState: async () => `Sidebar:\n${await this.describe()}`,
    });
  }

  /** Waits until no row under `section` satisfies `matches`. */
  async waitForNoRow(section: string, description: string, matches: (row: TreeRow) => boolean, options: WaitOptions = {}): Promise<void> {
    await waitFor(`${description} gone from ${section} in the sidebar`, async () => !(await this.section(section)).some(matches), {
      ...options,
      describeState: async () => `Sidebar:\n${await this.describe()}`,
    });
  }

  private rowLocator(label: string, nth = 0) {
    return this.page.locator(ROWS).filter({ has: this.page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }) }).nth(nth);
  }

  /** Clicks a row, by its label; `nth` picks among rows with the same label, from the top. */
  async clickRow(label: string, nth = 0): Promise<void> {
    await this.rowLocator(label, nth).click();
  }

  /** Hovers a row and clicks one of its inline actions, by the action's title. */
  async clickInlineAction(label: string, action: string, nth = 0): Promise<void> {
    const row = this.rowLocator(label, nth);
    await row.hover();
    await row.locator(`.actions .action-label[aria-label="${action}"]`).click();
  }

  /** Clicks an action of the view's title bar, by its title. */
  async clickTitleAction(action: string): Promise<void> {
    await this.page.locator(`${SIDEBAR} .composite.title .action-label[aria-label="${action}"]`).click();
  }

  /** Waits until the title bar offers an action, by its title. */
  async waitForTitleAction(action: string, options: WaitOptions = {}): Promise<void> {
    const locator = this.page.locator(`${SIDEBAR} .composite.title .action-label[aria-label="${action}"]`);
    await waitFor(`the "${action}" action in the sidebar's title bar`, async () => (await locator.count()) > 0, options);
  }

  /** Returns the text of the welcome content shown now, '' when there is none. */
  async welcomeText(): Promise<string> {
    const welcome = this.page.locator(WELCOME);
    return (await welcome.count()) > 0 ? (await welcome.first().innerText()).replace(/\s+/g, ' ').trim() : '';
  }

  /** Clicks a button of the welcome content, by its text. */
  async clickWelcomeButton(text: string): Promise<void> {
    await this.page.locator(`${WELCOME} .monaco-button`, { hasText: text }).first().click();
  }

  /** Saves a PNG of the sidebar alone: small enough to ship in the extension package. */
  async screenshot(filePath: string, height = 420): Promise<void> {
    await fs.mkdir(path.dirname(filePath), { recursive: true });
    const box = await this.page.locator(SIDEBAR).boundingBox();
    if (box === null) {
      throw new Error('The sidebar is not visible, so it cannot be photographed.');
    }
    const activityBar = await this.page.locator('.part.activitybar').boundingBox();
    const left = activityBar?.x ?? box.x;
    await this.page.screenshot({ path: filePath, clip: { x: left, y: box.y, width: box.x + box.width - left, height: Math.min(height, box.height) } });
  }
}

/** Returns the rows after the first one that `isParent` accepts, down to the next row at its level or above. */
function childrenOf(rows: TreeRow[], isParent: (row: TreeRow) => boolean): TreeRow[] {
  const start = rows.findIndex(isParent);
  if (start < 0) {
    return [];
  }
  const inside: TreeRow[] = [];
  for (const row of rows.slice(start + 1)) {
    if (row.level <= rows[start].level) {
      break;
    }
    inside.push(row);
  }
  return inside;
}

export function sameText(a: string, b: string): boolean {
  return a.normalize('NFC') === b.normalize('NFC');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
