/** The baseline's activities do nothing but tell the driver, in this process, that they ran. */
export type RecordListener = (key: string, k: number) => void;

export function baselineActivities(onRecord: RecordListener) {
  return {
    // eslint-disable-next-line @typescript-eslint/require-await -- an activity is async by contract
    async seal(_key: string, k: number, _data: unknown): Promise<number> {
      return k;
    },
    // eslint-disable-next-line @typescript-eslint/require-await
    async record(key: string, k: number): Promise<void> {
      onRecord(key, k);
    },
  };
}

export type BaselineActivities = ReturnType<typeof baselineActivities>;
