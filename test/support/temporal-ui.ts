/**
 * The pages of the Temporal Web UI (as served by the Temporal CLI dev server, UI 2.42) a person
 * uses for a human task: the workflow list filtered by a search-attribute query, the workflow's
 * User Metadata tab (summary, details, current details) and the "Send an Update" dialog.
 * Selectors follow what a person sees (roles, labels, texts) as far as the UI allows.
 */
import type { Page } from 'playwright-core';

export interface UpdateOutcome {
  /** The server's answer to the update, as the UI received it. */
  status: number;
  /** The failure the UI shows in the dialog (empty when the update was accepted). */
  alert: string;
  dialogOpen: boolean;
}

export class TemporalUi {
  constructor(
    private readonly page: Page,
    private readonly uiUrl: string,
  ) {}

  /** The workflow list of a namespace filtered by a visibility query, as typed in the UI. */
  async listWorkflows(namespace: string, query: string): Promise<void> {
    await this.page.goto(`${this.uiUrl}/namespaces/${namespace}/workflows?query=${encodeURIComponent(query)}`);
  }

  /** Links to workflows in the list, by workflow id; empty once the list has loaded and shows none. */
  async listedWorkflowIds(): Promise<string[]> {
    // The count and the rows come from two requests: wait for the rows the count announces.
    const heading = this.page.getByText(/^\d+ Workflows?$/).first();
    await heading.waitFor();
    const count = Number(/^(\d+)/.exec((await heading.innerText()).trim())?.[1] ?? 0);
    const links = this.page.getByRole('link', { name: /^instance-/ });
    if (count > 0) await links.nth(count - 1).waitFor();
    return links.allInnerTexts();
  }

  async openWorkflow(workflowId: string): Promise<void> {
    await this.page.getByRole('link', { name: workflowId, exact: true }).click();
    await this.page.getByRole('heading', { name: workflowId }).waitFor();
  }

  /**
   * The User Metadata tab: summary, details and current details, each rendered from Markdown
   * in its own frame. Returns their texts in that order.
   */
  async userMetadata(): Promise<{ summary: string; details: string; currentDetails: string }> {
    await this.page.getByRole('tab', { name: 'User Metadata' }).click();
    const frames = this.page.locator('iframe[title="output"]');
    await frames.nth(2).waitFor();
    const text = async (i: number): Promise<string> => (await frames.nth(i).contentFrame().locator('body').innerText()).trim();
    return { summary: await text(0), details: await text(1), currentDetails: await text(2) };
  }

  /** Sends an Update from "More Actions" → "Send an Update" with one JSON object as its data. */
  async sendUpdate(name: string, data: unknown): Promise<UpdateOutcome> {
    const page = this.page;
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByRole('menuitem', { name: 'Send an Update' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByTestId('update-select-button').click();
    await dialog.getByRole('option', { name: new RegExp(`^${name}`) }).click();
    const editor = dialog.locator('[role="textbox"][data-language="json"]');
    await editor.click();
    await page.keyboard.insertText(JSON.stringify(data));
    // The editor reformats its JSON when it loses focus; leave it first, or the click on Submit
    // only blurs it.
    await editor.blur();
    const answered = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes(`/update/${name}`));
    await dialog.getByRole('button', { name: 'Submit' }).click();
    const response = await answered;
    // A refusal stays in the open dialog with its reason; an accepted update closes the dialog.
    const refusal = dialog.getByRole('alert').filter({ hasText: /\S/ }).first();
    const settled = await Promise.race([
      dialog.waitFor({ state: 'hidden' }).then(() => 'closed' as const, () => undefined),
      refusal.waitFor().then(() => 'refused' as const, () => undefined),
    ]);
    if (!settled) throw new Error(`the UI neither closed the update dialog nor showed a refusal (HTTP ${response.status()})`);
    return { status: response.status(), alert: settled === 'refused' ? (await refusal.innerText()).trim() : '', dialogOpen: settled === 'refused' };
  }

  async closeDialog(): Promise<void> {
    await this.page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).last().click();
  }
}
