/**
 * A list the API gives a page at a time (`{items, next_cursor}`, `?cursor=`): the first page,
 * then "show more" appends the next one until there is no cursor. A failed page keeps what was
 * shown and can be asked for again. The lists that keep their array as the body (`X-Next-Cursor`) come through
 * `callPage` (src/api/page.ts). With `key`, an entry already shown (one added on this page, then found on a
 * later page) is not shown twice; `items` can be changed in place (an entry added, revoked, removed).
 */
import { computed, ref, shallowRef } from 'vue'

export interface CursorPage<T> {
  items: T[]
  next_cursor?: string | null
}

export function useCursorList<T>(fetchPage: (cursor: string | null) => Promise<CursorPage<T>>,
                                  options: { key?: (item: T) => unknown } = {}) {
  const items = shallowRef<T[]>([])
  const next = ref<string | null>(null)
  const loading = ref(false)
  const loaded = ref(false)
  const error = ref<unknown>(null)
  let generation = 0

  async function load(reset: boolean): Promise<void> {
    if (loading.value && !reset) return
    const mine = ++generation
    loading.value = true
    error.value = null
    try {
      const page = await fetchPage(reset ? null : next.value)
      if (mine !== generation) return // a newer search replaced this one
      const shown = reset || !options.key ? null : new Set(items.value.map(options.key))
      const fresh = shown ? page.items.filter((item) => !shown.has(options.key!(item))) : page.items
      items.value = reset ? page.items : [...items.value, ...fresh]
      next.value = page.next_cursor ?? null
      loaded.value = true
    } catch (e) {
      if (mine === generation) error.value = e
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  return {
    items,
    loading,
    loaded,
    error,
    hasMore: computed(() => next.value !== null),
    reload: () => load(true),
    more: () => load(false),
    retry: () => load(!loaded.value),
  }
}
