/**
 * A search as one types (issue #17): the words in `query` are asked for after a pause in typing
 * (debounced), a newer search aborts the request of the one before it (its answer, if it still
 * comes, is dropped), and the answer is a list the API gives a page at a time (`{items,
 * next_cursor}`): "show more" appends the next page. No words, no request: the list is empty and
 * `searched` is ''. `now()` searches at once (Enter, the search button).
 */
import { computed, onScopeDispose, ref, shallowRef, watch } from 'vue'

import type { CursorPage } from './pager'

export type SearchPage<T> = (q: string, cursor: string | null, signal: AbortSignal) => Promise<CursorPage<T>>

export interface SearchOptions {
  /** milliseconds without typing before a search starts */
  delay?: number
  /** the words are searched when they have at least this many characters (trimmed) */
  minLength?: number
}

export function useSearch<T>(fetchPage: SearchPage<T>, options: SearchOptions = {}) {
  const delay = options.delay ?? 300
  const minLength = options.minLength ?? 1
  const query = ref('')
  /** the words the shown list answers ('' before any search) */
  const searched = ref('')
  const items = shallowRef<T[]>([])
  const next = ref<string | null>(null)
  const loading = ref(false)
  const loaded = ref(false)
  const error = ref<unknown>(null)
  let generation = 0
  let lastReset = true
  let inFlight: AbortController | null = null
  let timer: ReturnType<typeof setTimeout> | null = null

  function cancel(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
    inFlight?.abort()
    inFlight = null
  }

  async function load(q: string, reset: boolean): Promise<void> {
    cancel()
    const mine = ++generation
    const controller = new AbortController()
    inFlight = controller
    lastReset = reset
    if (reset) searched.value = q
    loading.value = true
    error.value = null
    try {
      const page = await fetchPage(q, reset ? null : next.value, controller.signal)
      if (mine !== generation) return // a newer search (or the words cleared) replaced this one
      items.value = reset ? page.items : [...items.value, ...page.items]
      next.value = page.next_cursor ?? null
      loaded.value = true
    } catch (e) {
      if (mine !== generation) return
      error.value = e
      if (reset) { // the list shown answered other words
        items.value = []
        next.value = null
        loaded.value = false
      }
    } finally {
      if (mine === generation) {
        loading.value = false
        inFlight = null
      }
    }
  }

  function clear(): void {
    cancel()
    generation++
    searched.value = ''
    items.value = []
    next.value = null
    loading.value = false
    loaded.value = false
    error.value = null
  }

  /** Search the current words at once (Enter): the pending debounce is dropped. */
  function now(): Promise<void> {
    const q = query.value.trim()
    if (q.length < minLength) {
      clear()
      return Promise.resolve()
    }
    return load(q, true)
  }

  watch(query, (value) => {
    const q = value.trim()
    if (q === searched.value && (loaded.value || loading.value)) {
      if (timer !== null) clearTimeout(timer) // back to the words already shown: nothing to ask
      timer = null
      return
    }
    if (q.length < minLength) {
      clear()
      return
    }
    if (timer !== null) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = null
      void load(q, true)
    }, delay)
  })

  onScopeDispose(cancel)

  return {
    query,
    searched,
    items,
    loading,
    loaded,
    error,
    hasMore: computed(() => next.value !== null),
    /** nothing matched the words searched */
    nothing: computed(() => loaded.value && !loading.value && !error.value && items.value.length === 0),
    now,
    clear,
    /** the next page of the same words */
    more: () => (loading.value || next.value === null ? Promise.resolve() : load(searched.value, false)),
    /** after a failure: the same page again (the first one, or the next one of the shown list) */
    retry: () => load(searched.value, lastReset),
  }
}
