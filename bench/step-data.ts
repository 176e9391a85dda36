/**
 * Business data for each step's input (`--data-bytes`): the line items of an order, as the data a
 * real process step carries, so that the benchmark can say what the size of a step's data costs.
 * The same for every step, Lockstep and the bare-Temporal baseline alike.
 */
export interface LineItem {
  sku: string;
  quantity: number;
  unitPrice: string;
  description: string;
}

/** Line items whose JSON is at least `bytes` long (and at most one line longer); nothing for 0. */
export function lineItems(bytes: number): { lines: LineItem[] } | undefined {
  if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`data bytes must be a whole number of bytes, got ${bytes}`);
  if (bytes === 0) return undefined;
  const lines: LineItem[] = [];
  // `{"lines":[` and `]}`, then each line and the comma before all but the first.
  let size = '{"lines":[]}'.length;
  while (size < bytes) {
    const n = lines.length + 1;
    const line = { sku: `SKU-${String(n).padStart(6, '0')}`, quantity: 1 + (n % 17), unitPrice: `${(n % 500) + 1}.${String(n % 100).padStart(2, '0')}`, description: `Line ${n} of the benchmark's order` };
    size += JSON.stringify(line).length + (lines.length > 0 ? 1 : 0);
    lines.push(line);
  }
  return { lines };
}
