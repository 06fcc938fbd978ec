/** A person's name in a call: "You" for oneself, the chats store's names (fetched once) for others. */
import { useI18n } from 'vue-i18n'

import { useChats } from '@/features/chats/store'

export function useWho(): (userId: string | null | undefined) => string {
  const { t } = useI18n()
  const chats = useChats()
  return (userId) => {
    if (!userId) return ''
    if (userId === chats.me) return t('calls.you')
    void chats.name(userId)
    return chats.names[userId] || '…'
  }
}
