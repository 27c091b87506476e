// A progress bar on stderr, only when stderr is a terminal (never in --json mode or in logs).
export interface Progress {
  update(done: number): void;
  finish(): void;
}

const NO_PROGRESS: Progress = { update() {}, finish() {} };

export function progressBar(stream: NodeJS.WriteStream, label: string, total: number, enabled: boolean): Progress {
  if (!enabled || stream.isTTY !== true || total <= 0) return NO_PROGRESS;
  const width = 30;
  let last = -1;
  const draw = (done: number): void => {
    const ratio = Math.min(1, Math.max(0, done / total));
    const percent = Math.floor(ratio * 100);
    if (percent === last) return;
    last = percent;
    const filled = Math.round(ratio * width);
    stream.write(`\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${percent}% (${done}/${total})`);
  };
  draw(0);
  return {
    update: draw,
    finish() {
      draw(total);
      stream.write("\n");
    },
  };
}
