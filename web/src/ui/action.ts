/**
 * An action a person starts (save, revoke, upload): busy while it runs, its failure kept to be
 * shown, and `retry()` runs the same action with the same arguments again (nothing is lost on a
 * network blip: the form keeps its values and the error says what happened).
 */
import { ref } from 'vue'

export function useAction<A extends unknown[]>(perform: (...args: A) => Promise<void>) {
  const busy = ref(false)
  const error = ref<unknown>(null)
  let last: A | null = null

  async function run(...args: A): Promise<boolean> {
    if (busy.value) return false
    busy.value = true
    error.value = null
    last = args
    try {
      await perform(...args)
      return true
    } catch (e) {
      error.value = e
      return false
    } finally {
      busy.value = false
    }
  }

  function retry(): void {
    if (last) void run(...last)
  }

  function clear(): void {
    error.value = null
  }

  return { busy, error, run, retry, clear }
}
